package apps

import "testing"

func TestBuildOptions(t *testing.T) {
	labels, args := map[string]string{}, map[string]string{}
	words := buildOptionWords("--build-arg A=1\n--build-arg=B=two words\n--build-arg FROM_ENV\n--build-arg MISSING\n--label team=web")
	if err := applyBuildArgs(words, map[string]string{"FROM_ENV": "e"}, args, labels); err != nil {
		t.Fatal(err)
	}
	if len(args) != 3 || args["A"] != "1" || args["B"] != "two words" || args["FROM_ENV"] != "e" {
		t.Errorf("args %v", args)
	}
	if labels["team"] != "web" {
		t.Errorf("labels %v", labels)
	}
}
