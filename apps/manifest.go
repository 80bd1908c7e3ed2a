package apps

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// The manifests of an app's code: the Procfile and Dokku's app.json.
//
// Procfile: https://dokku.com/docs/processes/process-management/ (parsed
// as Dokku's procfile-util does, non-strict). app.json:
// https://dokku.com/docs/appendices/file-formats/app-json/ plus Heroku's
// "env" key (https://devcenter.heroku.com/articles/app-json-schema#env).

// Size limits of the manifests, so a repository cannot make the deployer
// hold or template an unbounded file.
const (
	MaxProcfileSize = 256 << 10
	MaxAppJSONSize  = 256 << 10
	MaxProcessType  = 63 // Dokku: "process name over 63 characters"
)

// maxFormationQuantity matches ps:scale's limit.
const maxFormationQuantity = 100

var processTypeRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// ValidateProcessType reports whether name is a valid process type:
// letters, digits, '_' and '-', at most MaxProcessType characters (Dokku's
// rules).
func ValidateProcessType(name string) error {
	if len(name) == 0 || len(name) > MaxProcessType || !processTypeRe.MatchString(name) {
		return Errorf(ErrInvalidName, "Invalid process type %q: it must match [a-zA-Z0-9_-]+ (max %d characters)", clip(name), MaxProcessType)
	}
	return nil
}

// Procfile is a parsed Procfile: its process types in file order and the
// command of each.
type Procfile struct {
	Types    []string
	Commands map[string]string
}

// Release returns the command of the release process type ("" if none),
// run once per deploy before the new containers start.
func (p Procfile) Release() string { return p.Commands["release"] }

// ParseProcfile parses a Procfile: one "type: command" per line; blank
// lines and lines starting with '#' or '//' are ignored. Types must be
// valid (ValidateProcessType) and unique, and each needs a command. A
// trailing " # comment" stays in the command: it runs through /bin/sh,
// which ignores it.
func ParseProcfile(data []byte) (Procfile, error) {
	p := Procfile{Commands: map[string]string{}}
	if len(data) > MaxProcfileSize {
		return p, fmt.Errorf("Procfile is larger than %d bytes", MaxProcfileSize)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxProcfileSize+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // a BOM some editors write
		}
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "//") {
			continue
		}
		typ, cmd, ok := strings.Cut(line, ":")
		typ, cmd = strings.TrimSpace(typ), strings.TrimSpace(cmd)
		if !ok || typ == "" {
			return p, fmt.Errorf("line %d: expected \"<type>: <command>\", got %q", n, clip(line))
		}
		if err := ValidateProcessType(typ); err != nil {
			return p, fmt.Errorf("line %d: %v", n, err)
		}
		if _, dup := p.Commands[typ]; dup {
			return p, fmt.Errorf("line %d: process type %q is declared twice", n, typ)
		}
		if cmd == "" {
			return p, fmt.Errorf("line %d: process type %q has no command", n, typ)
		}
		p.Types = append(p.Types, typ)
		p.Commands[typ] = cmd
	}
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("read Procfile: %w", err)
	}
	if len(p.Types) == 0 {
		return p, errors.New("no process types found in Procfile")
	}
	return p, nil
}

// AppJSON is the part of Dokku's app.json rivetr uses. Unknown keys
// (name, cron, buildpacks, ...) are ignored.
type AppJSON struct {
	Scripts      AppScripts                `json:"scripts"`
	Formation    map[string]FormationEntry `json:"formation,omitempty"`
	Healthchecks map[string][]Healthcheck  `json:"healthchecks,omitempty"`
	Env          map[string]EnvVar         `json:"env,omitempty"`
}

// AppScripts are app.json's scripts.
type AppScripts struct {
	Dokku DokkuScripts `json:"dokku"`
	// Postdeploy is Heroku's run-once-after-creation script.
	Postdeploy string `json:"postdeploy,omitempty"`
}

// DokkuScripts run in one-off containers of the new image: Predeploy
// before the new containers start, Postdeploy after the switch.
type DokkuScripts struct {
	Predeploy  string `json:"predeploy,omitempty"`
	Postdeploy string `json:"postdeploy,omitempty"`
}

// FormationEntry is app.json's formation of one process type. A nil
// Quantity leaves the count to ps:scale (default 1 for web, 0 otherwise).
type FormationEntry struct {
	Quantity    *int `json:"quantity,omitempty"`
	MaxParallel *int `json:"max_parallel,omitempty"`
}

// EnvVar is one app.json env entry. In JSON it is either a plain value
// ("KEY": "value") or an object {"value", "description", "required",
// "generator"}; numbers and booleans are taken as their text.
type EnvVar struct {
	Value       string `json:"value,omitempty"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
	// Generator "secret" makes a random value on first deploy.
	Generator string `json:"generator,omitempty"`
}

// EnvGeneratorSecret is the only generator: 64 random hex characters.
const EnvGeneratorSecret = "secret"

// SecretLength is the length of a generated secret: 64 hex characters,
// 256 bits from crypto/rand.
const SecretLength = 64

// UnmarshalJSON accepts a plain value or the object form.
func (e *EnvVar) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var o struct {
			Value       json.RawMessage `json:"value"`
			Description string          `json:"description"`
			Required    bool            `json:"required"`
			Generator   string          `json:"generator"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*e = EnvVar{Description: o.Description, Required: o.Required, Generator: o.Generator}
		if len(o.Value) > 0 && string(o.Value) != "null" {
			v, err := envScalar(o.Value)
			if err != nil {
				return fmt.Errorf("value %v", err)
			}
			e.Value = v
		}
		return nil
	}
	v, err := envScalar(b)
	if err != nil {
		return fmt.Errorf("must be a string or an object with \"value\", \"description\", \"required\" or \"generator\", got %s", jsonKind(b))
	}
	*e = EnvVar{Value: v}
	return nil
}

// envScalar returns a JSON string, number or boolean as text.
func envScalar(b []byte) (string, error) {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		return s, err
	case string(b) == "true" || string(b) == "false":
		return string(b), nil
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return "", err
		}
		return n.String(), nil
	}
	return "", fmt.Errorf("must be a string, number or boolean, got %s", jsonKind(b))
}

// jsonKind names the JSON type of a raw value for error messages.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 'n':
		return "null"
	}
	return string(b)
}

// ParseAppJSON parses and checks an app.json. Errors say where (line,
// column or key) and what is wrong. An empty file is an empty manifest.
func ParseAppJSON(data []byte) (*AppJSON, error) {
	if len(data) > MaxAppJSONSize {
		return nil, fmt.Errorf("app.json is larger than %d bytes", MaxAppJSONSize)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if len(bytes.TrimSpace(data)) == 0 {
		return &AppJSON{}, nil
	}
	if bytes.TrimSpace(data)[0] != '{' {
		return nil, errors.New("app.json must be a JSON object ({...})")
	}
	var doc struct {
		Scripts      AppScripts                 `json:"scripts"`
		Formation    map[string]FormationEntry  `json:"formation"`
		Healthchecks map[string][]Healthcheck   `json:"healthchecks"`
		Env          map[string]json.RawMessage `json:"env"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, jsonError(data, err)
	}
	a := &AppJSON{Scripts: doc.Scripts, Formation: doc.Formation, Healthchecks: doc.Healthchecks}
	for _, typ := range sortedKeysOf(doc.Formation) {
		if err := ValidateProcessType(typ); err != nil {
			return nil, fmt.Errorf("formation: %v", err)
		}
		if typ == "release" {
			return nil, errors.New("formation.release: the release process type runs once per deploy and cannot be scaled")
		}
		f := doc.Formation[typ]
		if f.Quantity != nil && (*f.Quantity < 0 || *f.Quantity > maxFormationQuantity) {
			return nil, fmt.Errorf("formation.%s.quantity must be from 0 to %d, got %d", typ, maxFormationQuantity, *f.Quantity)
		}
		if f.MaxParallel != nil && *f.MaxParallel < 1 {
			return nil, fmt.Errorf("formation.%s.max_parallel must be at least 1, got %d", typ, *f.MaxParallel)
		}
	}
	for _, typ := range sortedKeysOf(doc.Healthchecks) {
		if err := ValidateProcessType(typ); err != nil {
			return nil, fmt.Errorf("healthchecks: %v", err)
		}
		for i, h := range doc.Healthchecks[typ] {
			if err := h.Validate(); err != nil {
				return nil, fmt.Errorf("healthchecks.%s[%d]: %v", typ, i, err)
			}
		}
	}
	if len(doc.Env) > 0 {
		a.Env = make(map[string]EnvVar, len(doc.Env))
	}
	for _, k := range sortedKeysOf(doc.Env) {
		if err := ValidateEnvKey(k); err != nil {
			return nil, fmt.Errorf("env: %v", err)
		}
		var v EnvVar
		if err := json.Unmarshal(doc.Env[k], &v); err != nil {
			return nil, fmt.Errorf("env.%s: %v", k, jsonErrorText(err))
		}
		if v.Generator != "" && v.Generator != EnvGeneratorSecret {
			return nil, fmt.Errorf("env.%s: unknown generator %q (the only one is %q)", k, v.Generator, EnvGeneratorSecret)
		}
		if v.Generator != "" && v.Value != "" {
			return nil, fmt.Errorf("env.%s: has both a value and a generator; keep one", k)
		}
		if err := ValidateEnvValue(k, v.Value); err != nil {
			return nil, fmt.Errorf("env.%s: %v", k, err)
		}
		a.Env[k] = v
	}
	return a, nil
}

// ApplyAppEnv computes the config app.json's env adds on a deploy, as
// Heroku applies it on app creation: a key already in current is left
// alone, whatever its value; otherwise a value (plain or "value") is set,
// generator "secret" sets random(SecretLength) (64 hex characters; nil
// random uses crypto/rand), and a required key with neither is an error
// naming every such key. Optional keys without a value are skipped.
// Because generated keys are then set, a secret is made once and kept.
func ApplyAppEnv(spec map[string]EnvVar, current map[string]string, random func(int) string) (map[string]string, error) {
	if random == nil {
		random = randomSecret
	}
	set := map[string]string{}
	var missing []string
	for _, k := range sortedKeysOf(spec) {
		if err := ValidateEnvKey(k); err != nil {
			return nil, err
		}
		if _, ok := current[k]; ok {
			continue
		}
		v := spec[k]
		switch {
		case v.Generator == EnvGeneratorSecret:
			set[k] = random(SecretLength)
		case v.Generator != "":
			return nil, Errorf(ErrInvalidValue, "Unknown generator %q for %s in app.json", v.Generator, k)
		case v.Value != "":
			if err := ValidateEnvValue(k, v.Value); err != nil {
				return nil, err
			}
			set[k] = v.Value
		case v.Required:
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, Errorf(ErrInvalidValue, "Required config missing: %s (declared required in app.json; set with config:set)", strings.Join(missing, ", "))
	}
	return set, nil
}

func randomSecret(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)[:n]
}

// jsonError makes a decoding error of data point at a line and column.
func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := lineCol(data, se.Offset)
		return fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, se)
	case errors.As(err, &te):
		line, col := lineCol(data, te.Offset)
		field := te.Field
		if field == "" {
			field = "value"
		}
		return fmt.Errorf("line %d, column %d: %s must be %s, not %s", line, col, field, goKind(te.Type), te.Value)
	}
	return errors.New(jsonErrorText(err))
}

// jsonErrorText shortens a nested decoding error.
func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s must be %s, not %s", te.Field, goKind(te.Type), te.Value)
		}
		return fmt.Sprintf("must be %s, not %s", goKind(te.Type), te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// goKind names a Go type as the JSON kind it decodes from.
func goKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + t.String()
}

// lineCol turns a byte offset of data into a 1-based line and column.
func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return line, col
}

// sortedKeysOf returns m's keys in order, for stable errors and output.
func sortedKeysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
