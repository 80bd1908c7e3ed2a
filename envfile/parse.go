package envfile

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ParseJSON reads a JSON object of string values.
func ParseJSON(data []byte) (map[string]string, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	env := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			env[k] = v
		case float64, bool:
			env[k] = fmt.Sprint(v)
		default:
			return nil, fmt.Errorf("invalid JSON: value of %q must be a string", k)
		}
	}
	return env, nil
}

// Parse reads an envfile: lines of KEY=VALUE, optionally prefixed by
// "export ", with blank lines and # comments ignored. A value may be bare
// (ends at the line's end or at an unquoted " #"), single-quoted (literal,
// '\” for a quote, may span lines), or double-quoted (backslash escapes \n,
// \t, \", \\, \$, may span lines). Quoted parts concatenate as in a shell.
func Parse(data string) (map[string]string, error) {
	p := parser{src: data, line: 1}
	env := map[string]string{}
	for {
		p.skipBlank()
		if p.eof() {
			return env, nil
		}
		if p.peek() == '#' {
			p.skipLine()
			continue
		}
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		val, err := p.value()
		if err != nil {
			return nil, err
		}
		env[key] = val
	}
}

type parser struct {
	src  string
	pos  int
	line int
}

func (p *parser) eof() bool  { return p.pos >= len(p.src) }
func (p *parser) peek() byte { return p.src[p.pos] }

func (p *parser) next() byte {
	c := p.src[p.pos]
	p.pos++
	if c == '\n' {
		p.line++
	}
	return c
}

func (p *parser) skipBlank() {
	for !p.eof() && strings.IndexByte(" \t\r\n", p.peek()) >= 0 {
		p.next()
	}
}

func (p *parser) skipLine() {
	for !p.eof() && p.next() != '\n' {
	}
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s", p.line, fmt.Sprintf(format, args...))
}

func (p *parser) key() (string, error) {
	if strings.HasPrefix(p.src[p.pos:], "export ") {
		p.pos += len("export ")
		for !p.eof() && p.peek() == ' ' {
			p.next()
		}
	}
	start := p.pos
	for !p.eof() && p.peek() != '=' && p.peek() != '\n' {
		p.next()
	}
	if p.eof() || p.peek() != '=' {
		return "", p.errorf("expected KEY=VALUE")
	}
	key := strings.TrimSpace(p.src[start:p.pos])
	p.next() // '='
	if key == "" {
		return "", p.errorf("empty key")
	}
	return key, nil
}

func (p *parser) value() (string, error) {
	var b strings.Builder
	for !p.eof() {
		c := p.peek()
		switch {
		case c == '\n':
			p.next()
			return b.String(), nil
		case c == '\'':
			start := p.line
			p.next()
			end := strings.IndexByte(p.src[p.pos:], '\'')
			if end < 0 {
				return "", fmt.Errorf("line %d: unterminated single quote", start)
			}
			chunk := p.src[p.pos : p.pos+end]
			b.WriteString(chunk)
			p.line += strings.Count(chunk, "\n")
			p.pos += end + 1
		case c == '"':
			if err := p.doubleQuoted(&b); err != nil {
				return "", err
			}
		case c == '\\' && p.pos+1 < len(p.src):
			p.next()
			b.WriteByte(p.next())
		case c == ' ' || c == '\t':
			// Unquoted whitespace ends the value, unless only a comment or
			// nothing follows on this line, in which case it is dropped.
			rest := p.src[p.pos:]
			eol := strings.IndexByte(rest, '\n')
			if eol < 0 {
				eol = len(rest)
			}
			tail := strings.TrimLeft(rest[:eol], " \t\r")
			if tail == "" || tail[0] == '#' {
				p.pos += eol
				continue
			}
			b.WriteByte(p.next())
		case c == '\r' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\n':
			p.next()
		default:
			b.WriteByte(p.next())
		}
	}
	return b.String(), nil
}

func (p *parser) doubleQuoted(b *strings.Builder) error {
	start := p.line
	p.next() // opening quote
	for !p.eof() {
		c := p.next()
		switch c {
		case '"':
			return nil
		case '\\':
			if p.eof() {
				break
			}
			e := p.next()
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '"', '\\', '$', '`':
				b.WriteByte(e)
			case '\n':
				// line continuation
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return fmt.Errorf("line %d: unterminated double quote", start)
}
