package engine

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestParseRestartPolicy(t *testing.T) {
	for in, want := range map[string]container.RestartPolicy{
		"":               {Name: "no"},
		"no":             {Name: "no"},
		"always":         {Name: "always"},
		"unless-stopped": {Name: "unless-stopped"},
		"on-failure":     {Name: "on-failure"},
		"on-failure:5":   {Name: "on-failure", MaximumRetryCount: 5},
	} {
		got, err := parseRestartPolicy(in)
		if err != nil || got != want {
			t.Errorf("parseRestartPolicy(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"sometimes", "always:2", "on-failure:-1", "on-failure:x", "no:1"} {
		if _, err := parseRestartPolicy(in); err == nil {
			t.Errorf("parseRestartPolicy(%q) accepted", in)
		}
	}
}

func TestParseUlimit(t *testing.T) {
	for in, want := range map[string]Ulimit{
		"nofile=1024:4096":    {"nofile", 1024, 4096},
		"nproc=100":           {"nproc", 100, 100},
		" nofile=65536:65536": {"nofile", 65536, 65536},
	} {
		got, err := ParseUlimit(in)
		if err != nil || got != want {
			t.Errorf("ParseUlimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if again, err := ParseUlimit(got.String()); err != nil || again != got {
			t.Errorf("ParseUlimit(%q.String()) = %+v, %v", in, again, err)
		}
	}
	for _, in := range []string{"", "nofile", "nofile=", "=1", "nofile=a", "nofile=1:b", "nofile=10:5"} {
		if _, err := ParseUlimit(in); err == nil {
			t.Errorf("ParseUlimit(%q) accepted", in)
		}
	}
	d := DefaultUlimits()
	if len(d) != 2 || d[0].Name != "nofile" || d[1].Name != "nproc" {
		t.Fatalf("DefaultUlimits() = %v, want nofile and nproc", d)
	}
	for i, max := range []int64{65536, 32768} {
		if u := d[i]; u.Soft != u.Hard || u.Soft <= 0 || u.Soft > max {
			t.Errorf("default %v: want soft = hard in 1..%d", u, max)
		}
	}
}

func TestEnvList(t *testing.T) {
	got := strings.Join(envList(map[string]string{"PORT": "5000", "A": "x=y", "B": ""}), " ")
	if got != "A=x=y B= PORT=5000" {
		t.Errorf("envList = %q", got)
	}
}

func TestRelayBuild(t *testing.T) {
	stream := `{"stream":"Step 1/2 : FROM debian\n"}
{"status":"Pulling from library/debian","id":"bookworm"}
{"status":"Downloading","progressDetail":{"current":1,"total":10},"progress":"[>  ]","id":"abc"}
{"status":"Downloading","progressDetail":{"current":5,"total":10},"progress":"[=> ]","id":"abc"}
{"status":"Pull complete","id":"abc"}
{"stream":" ---\u003e 1234\n"}
{"aux":{"ID":"sha256:1234"}}
{"stream":"Successfully built 1234\n"}
`
	var out strings.Builder
	if err := relayBuild(strings.NewReader(stream), &out); err != nil {
		t.Fatal(err)
	}
	want := "Step 1/2 : FROM debian\nbookworm: Pulling from library/debian\nabc: Downloading\nabc: Pull complete\n ---> 1234\nSuccessfully built 1234\n"
	if out.String() != want {
		t.Errorf("relayed:\n%s\nwant:\n%s", out.String(), want)
	}
	err := relayBuild(strings.NewReader(`{"stream":"Step 2/2 : RUN false\n"}
{"errorDetail":{"code":1,"message":"The command '/bin/sh -c false' returned a non-zero code: 1"},"error":"The command '/bin/sh -c false' returned a non-zero code: 1"}
`), &out)
	if err == nil || err.Error() != "The command '/bin/sh -c false' returned a non-zero code: 1" {
		t.Errorf("error = %v", err)
	}
	if err := relayBuild(strings.NewReader(`{"error":"legacy"}`), &out); err == nil || err.Error() != "legacy" {
		t.Errorf("legacy error = %v", err)
	}
	if err := relayBuild(strings.NewReader(`{"stream":"x"`), &out); err == nil {
		t.Error("truncated stream accepted")
	}
}

func TestFamiliarName(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/debian:12": "debian:12",
		"docker.io/rivetr/app:3":      "rivetr/app:3",
		"docker.io/library/a/b:1":     "library/a/b:1",
		"rivetr/app:3":                "rivetr/app:3",
		"localhost/app:1":             "localhost/app:1",
		"ghcr.io/x/y:2":               "ghcr.io/x/y:2",
		"sha256:abc":                  "sha256:abc",
	} {
		if got := familiarName(in); got != want {
			t.Errorf("familiarName(%q) = %q, want %q", in, got, want)
		}
	}
}
