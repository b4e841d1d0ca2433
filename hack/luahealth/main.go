// Command luahealth runs an Argo CD resource health check (a Lua script) on one object, the way
// Argo CD's application controller does (argo-cd util/lua/lua.go, VM.ExecuteHealthLua), so that a
// script is tested in the interpreter it will run in:
//
//   - gopher-lua with only the base, package and table libraries and a safe os (time, date);
//     the full standard library (string, math, ...) only with -open-libs, which is what
//     argocd-cm's resource.customizations.useOpenLibs.<group_kind>: "true" turns on;
//   - the object as the global `obj`, numbers as Lua numbers;
//   - one second to run;
//   - the returned table read as {status, message}; a status Argo CD does not know becomes
//     Unknown, as there.
//
// Usage: luahealth [-open-libs] SCRIPT [OBJECT]   (OBJECT: a JSON or YAML file, or - / none for stdin)
// Prints {"status": ..., "message": ...}; exits 1 when the script fails or returns no table.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"

	"kubemart.io/hack/internal/object"
)

// HealthStatus is Argo CD's health.HealthStatus as a health script returns it.
type HealthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// The statuses Argo CD accepts from a script (isValidHealthStatusCode).
var validStatuses = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

func main() {
	openLibs := flag.Bool("open-libs", false, "open the whole Lua standard library (argocd-cm resource.customizations.useOpenLibs)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: luahealth [-open-libs] SCRIPT [OBJECT|-]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 || flag.NArg() > 2 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *openLibs); err != nil {
		fmt.Fprintf(os.Stderr, "luahealth: %v\n", err)
		os.Exit(1)
	}
}

func run(scriptPath, objectPath string, openLibs bool) error {
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return err
	}
	obj, err := object.Read(objectPath)
	if err != nil {
		return err
	}
	hs, err := executeHealthLua(obj, string(script), openLibs)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(hs)
}

func executeHealthLua(obj map[string]any, script string, openLibs bool) (*HealthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	encoded, err := luajson.Encode(ret)
	if err != nil {
		return nil, err
	}
	hs := &HealthStatus{}
	if err := json.Unmarshal(encoded, hs); err != nil {
		return nil, err
	}
	if !validStatuses[hs.Status] {
		return &HealthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return hs, nil
}

// decodeValue turns a decoded object into Lua values as Argo CD's decodeValue does.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// Argo CD gives scripts os.time and os.date only: nothing that reads files, runs programs or exits.
var safeOsFuncs = map[string]lua.LGFunction{"time": osTime, "date": osDate}

func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.OsLibName, safeOsFuncs))
	return 1
}

func safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), safeOsFuncs))
	return 1
}

func osTime(l *lua.LState) int {
	if l.GetTop() == 0 {
		l.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	tbl := l.CheckTable(1)
	field := func(key string, def int) int {
		if n, ok := tbl.RawGetString(key).(lua.LNumber); ok {
			return int(n)
		}
		return def
	}
	t := time.Date(field("year", -1), time.Month(field("month", -1)), field("day", -1),
		field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	l.Push(lua.LNumber(t.Unix()))
	return 1
}

// osDate supports what health scripts use: os.date("!%Y-%m-%dT%H:%M:%SZ") style formats and "*t".
func osDate(l *lua.LState) int {
	t := time.Now()
	format := "%c"
	if l.GetTop() >= 1 {
		format = l.CheckString(1)
		if len(format) > 0 && format[0] == '!' {
			t, format = t.UTC(), format[1:]
		}
		if l.GetTop() >= 2 {
			t = time.Unix(l.CheckInt64(2), 0)
		}
		if len(format) >= 2 && format[:2] == "*t" {
			ret := l.NewTable()
			for k, v := range map[string]int{
				"year": t.Year(), "month": int(t.Month()), "day": t.Day(), "hour": t.Hour(),
				"min": t.Minute(), "sec": t.Second(), "wday": int(t.Weekday()) + 1, "yday": t.YearDay(),
			} {
				ret.RawSetString(k, lua.LNumber(v))
			}
			ret.RawSetString("isdst", lua.LFalse)
			l.Push(ret)
			return 1
		}
	}
	l.Push(lua.LString(strftime(t, format)))
	return 1
}

var strftimeLayouts = map[byte]string{
	'a': "Mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'c': "02 Jan 06 15:04 MST", 'd': "02",
	'F': "2006-01-02", 'H': "15", 'I': "03", 'm': "01", 'M': "04", 'p': "PM", 'S': "05",
	'X': "15:04:05", 'y': "06", 'Y': "2006", 'z': "-0700", 'Z': "MST",
}

func strftime(t time.Time, format string) string {
	out := make([]byte, 0, len(format))
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i == len(format)-1 {
			out = append(out, c)
			continue
		}
		i++
		if layout, ok := strftimeLayouts[format[i]]; ok {
			out = append(out, t.Format(layout)...)
		} else if format[i] == '%' {
			out = append(out, '%')
		} else {
			out = append(out, '%', format[i])
		}
	}
	return string(out)
}
