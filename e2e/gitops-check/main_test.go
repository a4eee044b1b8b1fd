package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const healthLua = "../../manifests/argocd/health.lua"

// The operator's status contract at each step of a collector's life, as Argo CD (through the
// shipped health check) and kstatus (Flux, kubectl wait, cli-utils) must read it.
var fixtures = []struct {
	file           string
	argo, kstatus  string
	argoMessageHas string
}{
	// kstatus has no way to tell "no controller has written status yet" from "this kind has no
	// status contract" and calls both Current; Argo CD, through the health check, waits.
	{"fresh.yaml", "Progressing", "Current", "observe generation 1"},
	{"old-generation.yaml", "Progressing", "InProgress", "observe generation 3"},
	{"ready.yaml", "Healthy", "Current", "rollout complete"},
	{"rolling-out.yaml", "Progressing", "InProgress", "1 of 3 pods updated"},
	{"transient-error.yaml", "Progressing", "InProgress", "connection refused"},
	{"stalled-invalid-config.yaml", "Degraded", "Failed", `exporter "otlp" is not defined`},
	{"stalled-pods-failing.yaml", "Degraded", "Failed", "CrashLoopBackOff"},
	{"unmanaged.yaml", "Suspended", "Current", "unmanaged"},
	{"deleting.yaml", "Progressing", "Terminating", "being deleted"},
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func script(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(healthLua)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestArgoHealthAndKstatusAgreeOnTheContract(t *testing.T) {
	lua := script(t)
	for _, f := range fixtures {
		t.Run(f.file, func(t *testing.T) {
			obj, err := parseObject(readFixture(t, f.file))
			if err != nil {
				t.Fatal(err)
			}
			argo, err := ArgoHealth(lua, obj)
			if err != nil {
				t.Fatalf("argo-health: %v", err)
			}
			if argo.Status != f.argo || !strings.Contains(argo.Message, f.argoMessageHas) {
				t.Errorf("argo-health = %+v, want status %s with a message containing %q", argo, f.argo, f.argoMessageHas)
			}
			ks, err := Kstatus(obj)
			if err != nil {
				t.Fatalf("kstatus: %v", err)
			}
			if ks.Status != f.kstatus {
				t.Errorf("kstatus = %+v, want %s", ks, f.kstatus)
			}
		})
	}
}

// kubectl prints JSON; the fixtures are YAML. Both decode to the same verdicts.
func TestJSONInput(t *testing.T) {
	js, err := yaml.YAMLToJSON(readFixture(t, "stalled-invalid-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := parseObject(js)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := ArgoHealth(script(t), obj); err != nil || v.Status != "Degraded" {
		t.Fatalf("argo-health on JSON = %+v, %v", v, err)
	}
	if v, err := Kstatus(obj); err != nil || v.Status != "Failed" {
		t.Fatalf("kstatus on JSON = %+v, %v", v, err)
	}
}

// A condition computed for an older generation says nothing about the current spec.
func TestStaleConditionIsIgnored(t *testing.T) {
	obj, err := parseObject(readFixture(t, "stalled-invalid-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The operator has observed generation 2 but the Stalled condition is from generation 1.
	conds := obj.Object["status"].(map[string]any)["conditions"].([]any)
	for _, c := range conds {
		if c.(map[string]any)["type"] == "Stalled" {
			c.(map[string]any)["observedGeneration"] = int64(1)
		}
	}
	v, err := ArgoHealth(script(t), obj)
	if err != nil || v.Status != "Progressing" {
		t.Fatalf("argo-health = %+v, %v; want Progressing", v, err)
	}
}

func TestScriptErrorsAreErrors(t *testing.T) {
	obj, err := parseObject(readFixture(t, "ready.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{
		"runtime error":   `return obj.status.nothing.here`,
		"syntax error":    `hs = {`,
		"not a table":     `return "Healthy"`,
		"no os library":   `os.exit(1)`,
		"no io library":   `return io.open("/etc/passwd")`,
		"endless loop":    `while true do end`,
		"no return value": `local hs = {}`,
	} {
		if v, err := ArgoHealth(src, obj); err == nil {
			t.Errorf("%s: got %+v, want an error", name, v)
		}
	}
	v, err := ArgoHealth(`return {status = "Fine", message = "?"}`, obj)
	if err != nil || v.Status != "Unknown" {
		t.Errorf("an invalid status = %+v, %v; want Unknown as Argo CD reports it", v, err)
	}
}

// The argocd-cm patch carries health.lua verbatim, so the two never drift apart.
func TestArgoCDConfigMapPatchCarriesTheScript(t *testing.T) {
	raw, err := os.ReadFile("../../manifests/argocd/argocd-cm-patch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Kind     string            `json:"kind"`
		Metadata map[string]any    `json:"metadata"`
		Data     map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Kind != "ConfigMap" || cm.Metadata["name"] != "argocd-cm" {
		t.Fatalf("argocd-cm-patch.yaml is a %s named %v, want the ConfigMap argocd-cm", cm.Kind, cm.Metadata["name"])
	}
	const key = "resource.customizations.health.opentelemetry.io_OpenTelemetryCollector"
	if got, want := cm.Data[key], script(t); got != want {
		t.Fatalf("data[%s] differs from %s; regenerate the patch from it", key, healthLua)
	}
}
