// Command monitorpeer calls MonitorQuery.query the way TarsWeb's backend does, with TarsGo v1.4.6 and the stubs
// tars2go v1.2.4 generated from K8SFramework's MonitorQuery.tars (gen/tars, committed):
//
//	monitorpeer --locator L --servant tars.tarsquerystat.QueryObj --date YYYYMMDD --indexs a,b --groupby x,y
//	            [--cond field:OP:value]...
//
// OP is a number (0 EQ ... 5 LIKE). It prints {"ret": N, "rsp_ret": N, "msg": "...", "result": {...}} as JSON.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/TarsCloud/TarsGo/tars"

	mq "k8stars/monitorpeer/gen/tars"
)

type conds []string

func (c *conds) String() string     { return strings.Join(*c, " ") }
func (c *conds) Set(v string) error { *c = append(*c, v); return nil }

func split(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

func main() {
	locator := flag.String("locator", "", "the registry's QueryObj")
	servant := flag.String("servant", "tars.tarsquerystat.QueryObj", "the MonitorQuery servant")
	date := flag.String("date", "", "YYYYMMDD")
	tflag1 := flag.String("tflag1", "", "HHMM")
	tflag2 := flag.String("tflag2", "", "HHMM")
	dataid := flag.String("dataid", "", "tars_stat or tars_property")
	indexs := flag.String("indexs", "", "comma-separated")
	groupby := flag.String("groupby", "", "comma-separated")
	var cs conds
	flag.Var(&cs, "cond", "field:OP:value (repeatable)")
	flag.Parse()

	comm := tars.NewCommunicator()
	comm.SetProperty("locator", *locator)
	client := mq.NewMonitorQueryClient(*servant, comm)
	req := mq.MonitorQueryReq{Uid: "monitorpeer", Method: "query", Dataid: *dataid, Date: *date, Tflag1: *tflag1,
		Tflag2: *tflag2, Indexs: split(*indexs), Groupby: split(*groupby), Conditions: []mq.Condition{}}
	for _, c := range cs {
		parts := strings.SplitN(c, ":", 3)
		op, err := strconv.Atoi(parts[1])
		if len(parts) != 3 || err != nil {
			fmt.Fprintln(os.Stderr, "monitorpeer: --cond field:OP:value, got", c)
			os.Exit(2)
		}
		req.Conditions = append(req.Conditions, mq.Condition{Field: parts[0], Op: mq.OP(op), Val: parts[2]})
	}
	var rsp mq.MonitorQueryRsp
	ret, err := client.Query(&req, &rsp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "monitorpeer:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(map[string]interface{}{"ret": ret, "rsp_ret": rsp.Ret, "msg": rsp.Msg, "result": rsp.Result})
	fmt.Println(string(out))
}
