package apps

import (
	"math"
	"path/filepath"
	"strconv"
	"strings"
)

// ParseBytes reads a memory size: bytes, or with a b/k/m/g suffix
// (binary units, as docker's --memory). Empty is 0.
func ParseBytes(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "g"), strings.HasSuffix(s, "gb"):
		mult = 1 << 30
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "mb"):
		mult = 1 << 20
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "kb"):
		mult = 1 << 10
	}
	num := strings.TrimRight(s, "bkmg")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, Errorf(ErrInvalidValue, "Invalid memory size %q: use e.g. 512m or 1g", s)
	}
	v := n * float64(mult)
	if v > math.MaxInt64/2 {
		return 0, Errorf(ErrInvalidValue, "Memory size %q is too large", s)
	}
	return int64(v), nil
}

// ParseCPUs reads a CPU count ("0.5", "2") into nano-CPUs. Empty is 0.
func ParseCPUs(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 || n > 1024 {
		return 0, Errorf(ErrInvalidValue, "Invalid CPU count %q: use e.g. 0.5 or 2", s)
	}
	return int64(n * 1e9), nil
}

// ParseMount reads a storage:mount spec "SRC:DST[:ro]": SRC an absolute
// host path or a volume name ([A-Za-z0-9_.-]), DST an absolute path.
func ParseMount(spec string) (Mount, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Mount{}, Errorf(ErrInvalidValue, "Invalid mount %q: use /host/path:/container/path[:ro] or volume:/container/path", spec)
	}
	m := Mount{Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		if parts[2] != "ro" && parts[2] != "rw" {
			return Mount{}, Errorf(ErrInvalidValue, "Invalid mount option %q: use ro or rw", parts[2])
		}
		m.ReadOnly = parts[2] == "ro"
	}
	if !filepath.IsAbs(m.Target) || strings.Contains(m.Target, "..") {
		return Mount{}, Errorf(ErrInvalidValue, "Mount target %q must be an absolute path without '..'", m.Target)
	}
	switch {
	case filepath.IsAbs(m.Source):
		if strings.Contains(m.Source, "..") || filepath.Clean(m.Source) != m.Source {
			return Mount{}, Errorf(ErrInvalidValue, "Mount source %q must be a clean absolute path", m.Source)
		}
	case len(m.Source) <= 128 && volumeRe.MatchString(m.Source):
		m.Volume = true
	default:
		return Mount{}, Errorf(ErrInvalidValue, "Mount source %q must be an absolute host path or a volume name", m.Source)
	}
	return m, nil
}

// String renders a mount back to its spec.
func (m Mount) String() string {
	s := m.Source + ":" + m.Target
	if m.ReadOnly {
		s += ":ro"
	}
	return s
}
