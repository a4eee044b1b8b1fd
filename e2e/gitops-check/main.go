// Command gitops-check computes the health of one Kubernetes object the way GitOps tools do, so
// the e2e suite and the unit tests can check kotel-operator's status contract against the real
// libraries instead of a re-implementation:
//
//	gitops-check kstatus < obj.json                # Flux, kubectl wait --for, cli-utils appliers
//	gitops-check argo-health health.lua < obj.json # Argo CD's Lua health customization
//
// Each prints one line of JSON, {"status": "...", "message": "..."}. The object is JSON or YAML.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// Verdict is what both subcommands print.
type Verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Argo CD's health status codes (gitops-engine pkg/health).
var argoStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

// Argo CD stops a health script after one second.
const luaTimeout = time.Second

const usage = `usage:
  gitops-check kstatus < object.{json,yaml}
  gitops-check argo-health <script.lua> < object.{json,yaml}`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var (
		v   Verdict
		err error
	)
	switch os.Args[1] {
	case "kstatus":
		var obj *unstructured.Unstructured
		if obj, err = readObject(os.Stdin); err == nil {
			v, err = Kstatus(obj)
		}
	case "argo-health":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		var script []byte
		if script, err = os.ReadFile(os.Args[2]); err != nil {
			break
		}
		var obj *unstructured.Unstructured
		if obj, err = readObject(os.Stdin); err == nil {
			v, err = ArgoHealth(string(script), obj)
		}
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gitops-check %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	out, _ := json.Marshal(v)
	fmt.Println(string(out))
}

// readObject decodes one object, JSON or YAML, with integers as int64 as the API machinery
// holds them (kstatus reads metadata.generation as an int64).
func readObject(r io.Reader) (*unstructured.Unstructured, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading the object: %w", err)
	}
	return parseObject(raw)
}

func parseObject(raw []byte) (*unstructured.Unstructured, error) {
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("the object is neither JSON nor YAML: %w", err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		return nil, fmt.Errorf("decoding the object: %w", err)
	}
	return obj, nil
}

// Kstatus is cli-utils' verdict on the object.
func Kstatus(obj *unstructured.Unstructured) (Verdict, error) {
	res, err := status.Compute(obj)
	if err != nil {
		return Verdict{}, fmt.Errorf("kstatus: %w", err)
	}
	return Verdict{Status: res.Status.String(), Message: res.Message}, nil
}

// ArgoHealth runs a health script as Argo CD does: a fresh interpreter with only the base, table,
// string and math libraries, the object as the global `obj`, and the table the script returns
// read as {status, message}. A script error, a timeout or a result that is not a table is an
// error; a status Argo CD does not know becomes Unknown, as Argo CD reports it.
func ArgoHealth(script string, obj *unstructured.Unstructured) (Verdict, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), luaTimeout)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj.Object))
	if err := l.DoString(script); err != nil {
		return Verdict{}, fmt.Errorf("the health script failed: %w", err)
	}
	ret := l.Get(-1)
	hs, ok := ret.(*lua.LTable)
	if !ok {
		return Verdict{}, fmt.Errorf("the health script returned a %s, not a table", ret.Type())
	}
	v := Verdict{Status: luaString(hs.RawGetString("status")), Message: luaString(hs.RawGetString("message"))}
	if !argoStatuses[v.Status] {
		return Verdict{Status: "Unknown", Message: fmt.Sprintf("the health script returned the invalid status %q", v.Status)}, nil
	}
	return v, nil
}

func luaString(v lua.LValue) string {
	if v == lua.LNil {
		return ""
	}
	return v.String()
}

// toLua converts a decoded JSON value into Lua values: objects and arrays become tables (arrays
// indexed from 1), numbers LNumber, null nil.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, e := range v {
			t.RawSetString(k, toLua(l, e))
		}
		return t
	case []any:
		t := l.CreateTable(len(v), 0)
		for i, e := range v {
			t.RawSetInt(i+1, toLua(l, e))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case json.Number:
		f, _ := v.Float64()
		return lua.LNumber(f)
	default:
		return lua.LNil
	}
}
