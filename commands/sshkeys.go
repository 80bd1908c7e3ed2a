package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/sshkey"
)

// maxKeyFile bounds a public key file; real keys are under 16 KiB.
const maxKeyFile = 64 << 10

func registerSSHKeys(r *Registry, d Deps) {
	ns := r.Namespace("ssh-keys", "Manage public SSH keys allowed to push and run commands")
	r.Add(ns,
		Command{Name: "ssh-keys:add", Usage: "ssh-keys:add <name> (<file>|-)", Help: "Add a public key (from a file on the server, or stdin)", AdminOnly: true, Run: d.keysAdd},
		Command{Name: "ssh-keys:remove", Usage: "ssh-keys:remove (<name>|--fingerprint <fingerprint>)", Help: "Remove a public key by name or fingerprint", AdminOnly: true, Run: d.keysRemove},
		Command{Name: "ssh-keys:list", Usage: "ssh-keys:list [--format json]", Help: "List public keys: fingerprint and name", Run: d.keysList},
	)
}

func (d Deps) keysAdd(ctx context.Context, s *Session, args []string) error {
	if len(args) != 2 {
		return Failf("Usage: rivetr ssh-keys:add <name> (<file>|-)")
	}
	name, path := args[0], args[1]
	if err := apps.ValidateKeyName(name); err != nil {
		return err
	}
	var src io.Reader = s.Stdin
	if path != "-" {
		f, err := os.Open(s.Path(path))
		if err != nil {
			return Failf("Cannot read key file %s: %v", path, err)
		}
		defer f.Close()
		src = f
	}
	data, err := io.ReadAll(io.LimitReader(src, maxKeyFile+1))
	if err != nil {
		return fmt.Errorf("read key: %w", err)
	}
	if len(data) > maxKeyFile {
		return Failf("Key input is too large (over %d bytes)", maxKeyFile)
	}
	parsed, err := sshkey.Parse(data)
	if err != nil {
		return Failf("%v", err)
	}
	err = d.Apps.Store().AddSSHKey(ctx, apps.SSHKey{
		Name: name, Fingerprint: parsed.Fingerprint, PublicKey: parsed.Authorized, CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		return err
	}
	s.Step("Added ssh key %s", name)
	s.Println(parsed.Fingerprint)
	return nil
}

func (d Deps) keysRemove(ctx context.Context, s *Session, args []string) error {
	var fp string
	args, err := NewFlags().String(&fp, "fingerprint").Parse(args)
	if err != nil {
		return Failf("%v", err)
	}
	switch {
	case fp != "" && len(args) == 0:
		err = d.Apps.Store().RemoveSSHKey(ctx, fp, true)
	case fp == "" && len(args) == 1:
		if err := apps.ValidateKeyName(args[0]); err != nil {
			return err
		}
		err = d.Apps.Store().RemoveSSHKey(ctx, args[0], false)
	default:
		return Failf("Usage: rivetr ssh-keys:remove (<name>|--fingerprint <fingerprint>)")
	}
	if err != nil {
		return err
	}
	s.Step("Removed ssh key %s%s", fp, firstOr(args, ""))
	return nil
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}

func (d Deps) keysList(ctx context.Context, s *Session, args []string) error {
	var format string
	args, err := NewFlags().String(&format, "format").Parse(args)
	if err != nil {
		return Failf("%v", err)
	}
	if len(args) > 0 {
		return Failf("Too many arguments: unexpected %q", args[0])
	}
	keys, err := d.Apps.Store().SSHKeys(ctx)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		type item struct {
			Name        string `json:"name"`
			Fingerprint string `json:"fingerprint"`
			CreatedAt   int64  `json:"created_at"`
		}
		out := make([]item, len(keys))
		for i, k := range keys {
			out[i] = item{k.Name, k.Fingerprint, k.CreatedAt.Unix()}
		}
		return printJSON(s, out)
	case "", "stdout":
	default:
		return Failf("Invalid --format value %q: use json or stdout", format)
	}
	if len(keys) == 0 {
		s.Warn("No public keys found.")
		return nil
	}
	for _, k := range keys {
		s.Printf("%s NAME=%q\n", k.Fingerprint, k.Name)
	}
	return nil
}
