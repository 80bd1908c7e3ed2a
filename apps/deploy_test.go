package apps

import "testing"

func TestBuildOptions(t *testing.T) {
	labels := map[string]string{}
	args := BuildOptions("--build-arg A=1\n--build-arg=B=two words\n--build-arg FROM_ENV\n--build-arg MISSING\n--label team=web", map[string]string{"FROM_ENV": "e"}, labels)
	if len(args) != 3 || args["A"] != "1" || args["B"] != "two words" || args["FROM_ENV"] != "e" {
		t.Errorf("args %v", args)
	}
	if labels["team"] != "web" {
		t.Errorf("labels %v", labels)
	}
}
