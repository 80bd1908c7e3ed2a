// Package sshkey parses OpenSSH public keys and computes their SHA256
// fingerprints, so the commands and the SSH server agree on key identity.
package sshkey

import (
	"bufio"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Parsed is one public key in canonical form.
type Parsed struct {
	Key         ssh.PublicKey
	Fingerprint string // SHA256:...
	Authorized  string // "type base64", without comment or options
}

// Parse reads exactly one public key in authorized_keys format from data
// (blank lines and # comments are ignored).
func Parse(data []byte) (Parsed, error) {
	var found []Parsed
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return Parsed{}, fmt.Errorf("invalid public key: %w", err)
		}
		found = append(found, FromKey(key))
	}
	if err := sc.Err(); err != nil {
		return Parsed{}, fmt.Errorf("invalid public key: %w", err)
	}
	switch len(found) {
	case 0:
		return Parsed{}, fmt.Errorf("no public key found")
	case 1:
		return found[0], nil
	}
	return Parsed{}, fmt.Errorf("expected one public key, found %d", len(found))
}

// FromKey returns the canonical form of key.
func FromKey(key ssh.PublicKey) Parsed {
	return Parsed{
		Key:         key,
		Fingerprint: ssh.FingerprintSHA256(key),
		Authorized:  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))),
	}
}
