package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Field is one line of a :report: Key is the flag name without dashes
// ("app-locked"), Label the human label ("App locked").
type Field struct {
	Key   string
	Label string
	Value string
}

// Report describes a `NS:report [APP] [--format json] [--NS-KEY]` command.
type Report struct {
	// Title of each section, e.g. "%s app information" with the app name.
	Title string
	// Subjects lists every app (or service) to report on when none is given.
	Subjects func(ctx context.Context) ([]string, error)
	// Fields returns the fields of one subject; it validates the name.
	Fields func(ctx context.Context, name string) ([]Field, error)
}

// Run parses the report's arguments and prints it.
func (rep Report) Run(ctx context.Context, s *Session, args []string) error {
	var format string
	var only []string
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--format" && i+1 < len(args):
			i++
			format = args[i]
		case strings.HasPrefix(a, "--format="):
			format = strings.TrimPrefix(a, "--format=")
		case strings.HasPrefix(a, "--"):
			only = append(only, strings.TrimPrefix(a, "--"))
		default:
			rest = append(rest, a)
		}
	}
	if format != "" && format != "json" && format != "stdout" {
		return Failf("Invalid --format value %q: use json or stdout", format)
	}
	if len(only) > 1 {
		return Failf("Only one field flag may be given, got --%s", strings.Join(only, ", --"))
	}
	if len(rest) > 1 {
		return Failf("Too many arguments: expected at most one name")
	}
	var names []string
	if len(rest) == 1 {
		names = rest
	} else {
		if len(only) == 1 {
			return Failf("Please specify an app to run the command on")
		}
		all, err := rep.Subjects(ctx)
		if err != nil {
			return err
		}
		if len(all) == 0 && format != "json" {
			s.Warn("You haven't deployed any applications yet")
			return nil
		}
		names = all
	}
	jsonAll := map[string]map[string]string{}
	for _, name := range names {
		fields, err := rep.Fields(ctx, name)
		if err != nil {
			return err
		}
		if len(only) == 1 {
			for _, f := range fields {
				if f.Key == only[0] {
					s.Println(f.Value)
					return nil
				}
			}
			return Failf("Invalid flag passed, valid flags: %s", flagList(fields))
		}
		if format == "json" {
			m := make(map[string]string, len(fields))
			for _, f := range fields {
				m[f.Key] = f.Value
			}
			if len(rest) == 1 {
				return printJSON(s, m)
			}
			jsonAll[name] = m
			continue
		}
		printSection(s, fmt.Sprintf(rep.Title, name), fields)
	}
	if format == "json" {
		return printJSON(s, jsonAll)
	}
	return nil
}

func flagList(fields []Field) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = "--" + f.Key
	}
	return strings.Join(parts, ", ")
}

// printSection prints a header and aligned "Label:  value" detail lines.
// Reports are the command's result, so --quiet does not hide them.
func printSection(s *Session, title string, fields []Field) {
	width := 0
	for _, f := range fields {
		if len(f.Label) > width {
			width = len(f.Label)
		}
	}
	fmt.Fprintf(s.Stdout, "=====> %s\n", title)
	for _, f := range fields {
		fmt.Fprintf(s.Stdout, "       %-*s %s\n", width+1, f.Label+":", f.Value)
	}
}

func printJSON(s *Session, v any) error {
	enc := json.NewEncoder(s.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
