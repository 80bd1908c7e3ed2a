// Package envfile renders app config in the export formats Dokku offers
// (exports, envfile, docker-args, shell, json, ...) and parses envfiles and
// JSON back. Keys are always sorted byte-wise and values single-quoted with
// '\” so every format a shell reads round-trips byte for byte.
package envfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Formats lists the names accepted by Format.
var Formats = []string{"exports", "envfile", "docker-args", "docker-args-keys", "shell", "json", "json-list", "pretty"}

// Keys returns env's keys sorted byte-wise.
func Keys(env map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Quote single-quotes s for a POSIX shell: x'y becomes 'x'\”y'.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Format renders env in the named format. The result has no trailing newline.
func Format(env map[string]string, format string) (string, error) {
	keys := Keys(env)
	join := func(prefix, sep string) string {
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = prefix + k + "=" + Quote(env[k])
		}
		return strings.Join(parts, sep)
	}
	switch format {
	case "exports":
		return join("export ", "\n"), nil
	case "envfile":
		return join("", "\n"), nil
	case "docker-args":
		return join("--env=", " "), nil
	case "shell":
		return join("", " "), nil
	case "docker-args-keys":
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = "--env=" + k
		}
		return strings.Join(parts, " "), nil
	case "json":
		if env == nil {
			env = map[string]string{}
		}
		return marshal(env)
	case "json-list":
		type pair struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		}
		list := make([]pair, len(keys))
		for i, k := range keys {
			list[i] = pair{k, env[k]}
		}
		return marshal(list)
	case "pretty":
		return Pretty("", env), nil
	}
	return "", fmt.Errorf("unknown format %q: use one of %s", format, strings.Join(Formats, ", "))
}

func marshal(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// Pretty renders "KEY:  value" lines aligned on the widest key, each line
// starting with prefix, as Dokku's config:show does.
func Pretty(prefix string, env map[string]string) string {
	keys := Keys(env)
	width := 0
	for _, k := range keys {
		if len(k) > width {
			width = len(k)
		}
	}
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = prefix + k + ":" + strings.Repeat(" ", width-len(k)+2) + env[k]
	}
	return strings.Join(lines, "\n")
}
