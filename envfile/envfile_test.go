package envfile

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

var sample = map[string]string{
	"B":      "it's",
	"A":      "hello world",
	"Z_LAST": `$HOME "q" \n`,
}

func TestFormat(t *testing.T) {
	cases := map[string]string{
		"exports":          "export A='hello world'\nexport B='it'\\''s'\nexport Z_LAST='$HOME \"q\" \\n'",
		"envfile":          "A='hello world'\nB='it'\\''s'\nZ_LAST='$HOME \"q\" \\n'",
		"docker-args":      "--env=A='hello world' --env=B='it'\\''s' --env=Z_LAST='$HOME \"q\" \\n'",
		"docker-args-keys": "--env=A --env=B --env=Z_LAST",
		"shell":            "A='hello world' B='it'\\''s' Z_LAST='$HOME \"q\" \\n'",
		"json":             `{"A":"hello world","B":"it's","Z_LAST":"$HOME \"q\" \\n"}`,
		"json-list":        `[{"name":"A","value":"hello world"},{"name":"B","value":"it's"},{"name":"Z_LAST","value":"$HOME \"q\" \\n"}]`,
		"pretty":           "A:       hello world\nB:       it's\nZ_LAST:  $HOME \"q\" \\n",
	}
	for _, f := range Formats {
		t.Run(f, func(t *testing.T) {
			got, err := Format(sample, f)
			if err != nil {
				t.Fatal(err)
			}
			if got != cases[f] {
				t.Errorf("got\n%s\nwant\n%s", got, cases[f])
			}
		})
	}
	if _, err := Format(sample, "yaml"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestFormatEmpty(t *testing.T) {
	for _, f := range Formats {
		got, err := Format(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		switch f {
		case "json":
			want = "{}"
		case "json-list":
			want = "[]"
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", f, got, want)
		}
	}
}

func TestKeysSortedBytewise(t *testing.T) {
	got := Keys(map[string]string{"b": "", "B": "", "_a": "", "A": "", "a": ""})
	want := []string{"A", "B", "_a", "a", "b"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
}

// odd holds values that must survive every round trip byte for byte.
var odd = map[string]string{
	"SPACES":   "  lead and trail  ",
	"DOLLAR":   "$HOME ${PATH} $(id) `id`",
	"QUOTES":   `'single' "double" '\''`,
	"NEWLINES": "line1\nline2\n\nline4\n",
	"CRLF":     "a\r\nb",
	"UNICODE":  "héllo wörld ✓ 日本",
	"TAB":      "a\tb",
	"BACKSL":   `C:\path\n \\ \"`,
	"HASH":     "value # not a comment",
	"EMPTY":    "",
	"EQUALS":   "a=b=c",
}

func TestRoundTripEnvfile(t *testing.T) {
	for _, f := range []string{"envfile", "exports"} {
		out, err := Format(odd, f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(out)
		if err != nil {
			t.Fatalf("%s: parse: %v\n%s", f, err, out)
		}
		assertEqual(t, f, got, odd)
	}
}

func TestRoundTripJSON(t *testing.T) {
	out, err := Format(odd, "json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseJSON([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "json", got, odd)
}

// TestShellAgrees checks that a real POSIX shell reads our exports exactly
// as we wrote them.
func TestShellAgrees(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this machine")
	}
	out, _ := Format(odd, "exports")
	script := out + "\nfor k in " + strings.Join(Keys(odd), " ") + "; do eval \"printf '%s\\0%s\\0' \\\"\\$k\\\" \\\"\\${$k}\\\"\"; done"
	res, err := exec.Command(sh, "-c", script).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	parts := strings.Split(string(res), "\x00")
	got := map[string]string{}
	for i := 0; i+1 < len(parts); i += 2 {
		got[parts[i]] = parts[i+1]
	}
	assertEqual(t, "sh", got, odd)
}

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want map[string]string
	}{
		{"A=1\nB=two words\n", map[string]string{"A": "1", "B": "two words"}},
		{"# comment\n\nexport A=1 # trailing\n", map[string]string{"A": "1"}},
		{`A="x\ny\t\"q\" \$HOME"`, map[string]string{"A": "x\ny\t\"q\" $HOME"}},
		{"A='multi\nline'\nB=2", map[string]string{"A": "multi\nline", "B": "2"}},
		{"A=\nB=''\n", map[string]string{"A": "", "B": ""}},
		{"A=1\r\nB=2\r\n", map[string]string{"A": "1", "B": "2"}},
		{"A='a'\"b\"c", map[string]string{"A": "abc"}},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		assertEqual(t, c.in, got, c.want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"NOEQUALS\n", "A='open\n", `A="open`, "=value\n"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted bad input", in)
		}
	}
	for _, in := range []string{`{"A":`, `{"A":{"b":1}}`, `[1,2]`} {
		if _, err := ParseJSON([]byte(in)); err == nil {
			t.Errorf("ParseJSON(%q) accepted bad input", in)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, v := range odd {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.IndexByte(v, 0) >= 0 {
			return
		}
		in := map[string]string{"K": v}
		out, _ := Format(in, "envfile")
		got, err := Parse(out)
		if err != nil {
			t.Fatalf("parse %q: %v", out, err)
		}
		if got["K"] != v {
			t.Fatalf("round trip of %q gave %q", v, got["K"])
		}
	})
}

func assertEqual(t *testing.T, name string, got, want map[string]string) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s: got %s, want %s", name, g, w)
	}
}
