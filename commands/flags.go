package commands

import (
	"fmt"
	"strconv"
	"strings"
)

// Flags parses a command's own flags, which may appear anywhere among its
// arguments until a "--". Long flags take "--name", "--name=value" or
// "--name value"; short ones "-n value". Unknown flags are errors, so a
// typo never passes as an argument.
type Flags struct {
	bools   map[string]*bool
	strings map[string]*string
}

// NewFlags returns an empty flag set.
func NewFlags() *Flags {
	return &Flags{bools: map[string]*bool{}, strings: map[string]*string{}}
}

// Bool registers a boolean flag under each of names ("force", "f").
func (f *Flags) Bool(p *bool, names ...string) *Flags {
	for _, n := range names {
		f.bools[n] = p
	}
	return f
}

// String registers a flag that takes a value.
func (f *Flags) String(p *string, names ...string) *Flags {
	for _, n := range names {
		f.strings[n] = p
	}
	return f
}

// Parse sets the flags found in args and returns the other arguments.
func (f *Flags) Parse(args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(rest, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if strings.HasPrefix(a, "--") {
			name = a[2:]
		} else {
			name = a[1:]
		}
		value, hasValue := "", false
		if eq := strings.IndexByte(name, '='); eq >= 0 {
			name, value, hasValue = name[:eq], name[eq+1:], true
		}
		if p, ok := f.bools[name]; ok {
			if !hasValue {
				*p = true
				continue
			}
			b, err := strconv.ParseBool(value)
			if err != nil {
				return nil, fmt.Errorf("flag %s expects true or false, got %q", a[:strings.IndexByte(a, '=')], value)
			}
			*p = b
			continue
		}
		if p, ok := f.strings[name]; ok {
			if !hasValue {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag %s needs a value", a)
				}
				i++
				value = args[i]
			}
			*p = value
			continue
		}
		return nil, fmt.Errorf("unknown flag %s", strings.SplitN(a, "=", 2)[0])
	}
	return rest, nil
}
