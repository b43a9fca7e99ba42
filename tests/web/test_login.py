"""Login with a TAccount (K8SFramework's bcrypt of the SHA-1 hex), the first login choosing the password, sessions
ending with a password change, CSRF on the login itself."""

from __future__ import annotations

from typing import Any

from helpers import Browser, add_account

from k8stars.kube.accounts import check_password
from k8stars.kube.client import Kube
from k8stars.kube.resources import TACCOUNT
from k8stars.web.accounts import object_name
from k8stars.web.session import KEY_FIELD, SECRET


async def test_first_login_sets_the_password(kube: Kube, namespace: str, console: str, browser: Any) -> None:
    await add_account(kube, namespace, "admin", "initial-pw", ("admin", "*"), activated=False)
    b = await Browser.open(browser, console)
    try:
        await b.goto("/")
        assert b.page.url.endswith("/login")  # nothing without a login
        await b.shot("login.png")
        await b.login("admin", "wrong-pw")
        assert "wrong user name or password" in await b.page.inner_text("#login")
        await b.login("admin", "initial-pw")
        assert b.page.url.endswith("/password")  # not activated: the password first
        await b.goto("/accounts")
        assert b.page.url.endswith("/password")  # and nothing else
        await b.page.fill("input[name=current]", "initial-pw")
        await b.page.fill("input[name=new]", "s3cret-Pass")
        await b.page.fill("input[name=repeat]", "s3cret-Pass")
        await b.page.click("#password button[type=submit]")
        await b.page.wait_for_load_state()
        assert "password changed" in await b.page.inner_text("main")
        account = await kube.get(TACCOUNT, namespace, object_name("admin"))
        assert account is not None
        auth = account["spec"]["authentication"]
        assert auth["activated"] is True
        assert auth["bcryptPassword"].startswith("$2a$") and check_password("s3cret-Pass", auth["bcryptPassword"])
        # The console created its session key Secret; the key never shows in a page.
        secret = await kube.get(SECRET, namespace, "tars-web")
        assert secret is not None and KEY_FIELD in secret["data"]
        assert secret["data"][KEY_FIELD] not in await b.page.content()

        await b.page.click("header button[type=submit]")  # log out
        await b.page.wait_for_load_state()
        assert b.page.url.endswith("/login")
        await b.login("admin", "initial-pw")
        assert b.page.url.endswith("/login")
        await b.login("admin", "s3cret-Pass")
        assert b.page.url == console + "/"
        b.assert_clean("status of 401")  # the refused logins answer 401
    finally:
        await b.close()


async def test_password_change_ends_other_sessions_and_csrf(kube: Kube, namespace: str, console: str,
                                                            browser: Any) -> None:  # fmt: skip
    await add_account(kube, namespace, "dev", "dev-pass-1", ("developer", "Test"))
    first, second = await Browser.open(browser, console), await Browser.open(browser, console)
    try:
        await first.login("dev", "dev-pass-1")
        await second.login("dev", "dev-pass-1")
        assert second.page.url == console + "/"
        # A login POST without the token of the login form's session is refused.
        third = await Browser.open(browser, console)
        assert await third.forge("/login", {"username": "dev", "password": "dev-pass-1"}) == 403
        await third.close()
        await first.goto("/password")
        await first.page.fill("input[name=current]", "dev-pass-1")
        await first.page.fill("input[name=new]", "dev-pass-2")
        await first.page.fill("input[name=repeat]", "dev-pass-2")
        await first.page.click("#password button[type=submit]")
        await first.page.wait_for_load_state()
        assert first.page.url == console + "/"
        await second.goto("/")
        assert second.page.url.endswith("/login")  # the other session ended
        first.assert_clean()
        second.assert_clean()
    finally:
        await first.close()
        await second.close()


async def test_failed_logins_are_throttled(kube: Kube, namespace: str, console: str, browser: Any) -> None:
    await add_account(kube, namespace, "dev", "dev-pass-1", ("developer", "Test"))
    b = await Browser.open(browser, console)
    try:
        for _ in range(5):
            await b.login("dev", "guess-pass")
        await b.login("dev", "dev-pass-1")  # right, but too late
        assert b.page.url.endswith("/login")
        assert "too many failed logins" in await b.page.inner_text("#login")
        b.assert_clean("status of 401", "status of 429")
    finally:
        await b.close()
