from k8stars.cli import main

main()
