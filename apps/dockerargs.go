package apps

import (
	"fmt"
	"strings"
)

// DockerArg is one option a docker-args-* hook printed: a flag and its
// value ("-e" "KEY=VALUE").
type DockerArg struct {
	Flag  string
	Value string
}

// dockerFlags are the flags ParseDockerArgs knows; each takes a value.
var dockerFlags = map[string]bool{"-e": true, "--env": true, "-l": true, "--label": true, "--build-arg": true}

// ParseDockerArgs splits s (shell-quoted words, as Dokku's docker-args
// triggers print them) into flags with their values: "--flag value",
// "--flag=value" and "-eVALUE" forms. A word that is not a known flag is an
// error naming it, so an option is never silently dropped.
func ParseDockerArgs(s string) ([]DockerArg, error) {
	words, err := SplitWords(s)
	if err != nil {
		return nil, err
	}
	var out []DockerArg
	for i := 0; i < len(words); i++ {
		w := words[i]
		flag, value, hasValue := w, "", false
		if f, v, ok := strings.Cut(w, "="); ok && strings.HasPrefix(f, "--") {
			flag, value, hasValue = f, v, true
		} else if len(w) > 2 && w[0] == '-' && w[1] != '-' {
			flag, value, hasValue = w[:2], w[2:], true
		}
		if !dockerFlags[flag] {
			return nil, fmt.Errorf("option %s is not supported", clipWord(flag))
		}
		if !hasValue {
			if i+1 >= len(words) {
				return nil, fmt.Errorf("option %s needs a value", flag)
			}
			i++
			value = words[i]
		}
		out = append(out, DockerArg{Flag: flag, Value: value})
	}
	return out, nil
}

func clipWord(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// SplitWords splits s into words like a POSIX shell does, without any
// expansion: blanks separate words, '...' keeps everything literally,
// "..." keeps all but \" \\ \$ \` escapes, and a backslash outside quotes
// escapes the next character.
func SplitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("trailing backslash")
			}
			i++
			if s[i] != '\n' {
				cur.WriteByte(s[i])
			}
			inWord = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote")
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// ShellQuote quotes s as one shell word (SplitWords reads it back).
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
