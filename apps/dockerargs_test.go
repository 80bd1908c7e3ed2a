package apps

import (
	"reflect"
	"testing"
)

func TestSplitWords(t *testing.T) {
	cases := map[string][]string{
		``:                          nil,
		`-e A=1`:                    {"-e", "A=1"},
		"  -e\tA=1\n-l x=y ":        {"-e", "A=1", "-l", "x=y"},
		`-e 'MSG=hello world'`:      {"-e", "MSG=hello world"},
		`-e "Q=a \"b\" \$c"`:        {"-e", `Q=a "b" $c`},
		`-e A=one\ two`:             {"-e", "A=one two"},
		`--env=X='' --label=k="v"`:  {"--env=X=", "--label=k=v"},
		`"$STDIN" is kept verbatim`: {"$STDIN", "is", "kept", "verbatim"},
	}
	for in, want := range cases {
		got, err := SplitWords(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("SplitWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`'open`, `"open`, `trailing\`} {
		if _, err := SplitWords(bad); err == nil {
			t.Errorf("SplitWords(%q) accepted", bad)
		}
	}
}

func TestParseDockerArgs(t *testing.T) {
	got, err := ParseDockerArgs("-e A=1 --env=B=2 -eC=3 --label team=web -l x=y --build-arg V")
	want := []DockerArg{{"-e", "A=1"}, {"--env", "B=2"}, {"-e", "C=3"}, {"--label", "team=web"}, {"-l", "x=y"}, {"--build-arg", "V"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"--privileged", "-v /:/host", "-e", "A=1"} {
		if _, err := ParseDockerArgs(bad); err == nil {
			t.Errorf("ParseDockerArgs(%q) accepted", bad)
		}
	}
}

// FuzzSplitWords: any input splits without panicking, and words quoted
// with ShellQuote come back as they were.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`-e A=1`, `'a b' "c \"d\"" e\ f`, `"$x" '' ""`, "a\tb\nc", `'`, `\`} {
		f.Add(s, "x y")
	}
	f.Fuzz(func(t *testing.T, s, w string) {
		SplitWords(s)
		ParseDockerArgs(s)
		words := []string{w, s, "-e", w + "=" + s}
		var quoted []string
		for _, x := range words {
			quoted = append(quoted, ShellQuote(x))
		}
		joined := ""
		for i, q := range quoted {
			if i > 0 {
				joined += " "
			}
			joined += q
		}
		got, err := SplitWords(joined)
		if err != nil || !reflect.DeepEqual(got, words) {
			t.Fatalf("SplitWords(%q) = %q, %v; want %q", joined, got, err, words)
		}
	})
}
