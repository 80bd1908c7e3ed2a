package commands

import (
	"context"
	"io"
	"time"

	"github.com/rivetr/rivetr/apps"
)

// backupAPI is the backup side of the managed services.
type backupAPI interface {
	Backup(ctx context.Context, kind, name, dir, bucket string) (string, error)
	BackupAuth(ctx context.Context, kind, name, endpoint, access, secret, region, bucket string) error
	BackupEncryption(ctx context.Context, kind, name, passphrase string) error
	BackupSchedule(ctx context.Context, kind, name, spec, bucket string) error
	Schedule(ctx context.Context, kind, name string) (string, string, error)
	BackupList(ctx context.Context, kind, name, bucket string) ([]apps.BackupInfo, error)
	BackupRestore(ctx context.Context, kind, name, backup, bucket string, out io.Writer) (string, error)
}

// registerBackups adds an engine's backup commands when the services
// side can back up.
func registerBackups(r *Registry, ns *Namespace, s svc) {
	b, ok := s.api.(backupAPI)
	if !ok {
		return
	}
	n := s.k.Name
	r.Add(ns,
		Command{Name: n + ":backup", Usage: n + ":backup <service> [<bucket>] [--dir PATH]", Help: "Back the service up: to the local backup directory (or --dir, on the server only), or to an S3 bucket", Run: s.backup(b)},
		Command{Name: n + ":backup-auth", Usage: n + ":backup-auth <service> <endpoint-url> <access-key> <secret-key> [<region>] [<bucket>]", Help: "Store the S3-compatible storage credentials of the service's backups", Run: s.backupAuth(b)},
		Command{Name: n + ":backup-deauth", Usage: n + ":backup-deauth <service>", Help: "Forget the S3 credentials", Run: s.backupDeauth(b)},
		Command{Name: n + ":backup-list", Usage: n + ":backup-list <service> [<bucket>]", Help: "List the service's backups, newest first", Run: s.backupList(b)},
		Command{Name: n + ":backup-restore", Usage: n + ":backup-restore <service> [<backup>] [--bucket BUCKET]", Help: "Restore a backup (default: the newest) into the service", Run: s.backupRestore(b)},
		Command{Name: n + ":backup-schedule", Usage: n + ":backup-schedule <service> <cron> [<bucket>]", Help: "Back the service up on a cron schedule (5 fields, UTC), locally or to a bucket", Run: s.backupSchedule(b)},
		Command{Name: n + ":backup-schedule-cat", Usage: n + ":backup-schedule-cat <service>", Help: "Show the backup schedule", Run: s.backupScheduleCat(b)},
		Command{Name: n + ":backup-unschedule", Usage: n + ":backup-unschedule <service>", Help: "Stop scheduled backups", Run: s.backupUnschedule(b)},
		Command{Name: n + ":backup-set-encryption", Usage: n + ":backup-set-encryption <service> <passphrase>", Help: "Encrypt the service's backups (AES-256-GCM, key from the passphrase by scrypt)", Run: s.backupEncryption(b, true)},
		Command{Name: n + ":backup-unset-encryption", Usage: n + ":backup-unset-encryption <service>", Help: "Stop encrypting backups", Run: s.backupEncryption(b, false)},
	)
}

type svcRun = func(ctx context.Context, sess *Session, args []string) error

func (s svc) backup(b backupAPI) svcRun {
	return func(ctx context.Context, sess *Session, args []string) error {
		var dir string
		args, err := NewFlags().String(&dir, "dir").Parse(args)
		if err != nil || len(args) < 1 || len(args) > 2 || (dir != "" && len(args) == 2) {
			return Failf("Usage: rivetr %s:backup <service> [<bucket>] [--dir PATH]", s.k.Name)
		}
		if dir != "" {
			// Writing a server path is for the server's admin only.
			if !sess.Admin {
				return Failf("%s:backup --dir works only on the server; over SSH back up to the default directory or a bucket", s.k.Name)
			}
			dir = sess.Path(dir)
		}
		bucket := ""
		if len(args) == 2 {
			bucket = args[1]
		}
		if _, err := s.api.Record(ctx, s.k.Name, args[0]); err != nil {
			return err
		}
		sess.Step("Backing up %s %s", s.k.Title, args[0])
		where, err := b.Backup(ctx, s.k.Name, args[0], dir, bucket)
		if err != nil {
			return err
		}
		sess.Step("Backup written: %s", where)
		return nil
	}
}

func (s svc) backupAuth(b backupAPI) svcRun {
	return func(ctx context.Context, sess *Session, args []string) error {
		if len(args) < 4 || len(args) > 6 {
			return Failf("Usage: rivetr %s:backup-auth <service> <endpoint-url> <access-key> <secret-key> [<region>] [<bucket>]", s.k.Name)
		}
		args = append(args, "", "")
		if err := b.BackupAuth(ctx, s.k.Name, args[0], args[1], args[2], args[3], args[4], args[5]); err != nil {
			return err
		}
		sess.Step("Stored the backup credentials of %s (the secret is not shown again)", args[0])
		return nil
	}
}

func (s svc) backupDeauth(b backupAPI) svcRun {
	return func(ctx context.Context, sess *Session, args []string) error {
		if len(args) != 1 {
			return Failf("Usage: rivetr %s:backup-deauth <service>", s.k.Name)
		}
		if err := b.BackupAuth(ctx, s.k.Name, args[0], "", "", "", "", ""); err != nil {
			return err
		}
		sess.Step("Removed the backup credentials of %s", args[0])
		return nil
	}
}

func (s svc) backupList(b backupAPI) svcRun {
	return func(ctx context.Context, sess *Session, args []string) error {
		if len(args) < 1 || len(args) > 2 {
			return Failf("Usage: rivetr %s:backup-list <service> [<bucket>]", s.k.Name)
		}
		bucket := ""
		if len(args) == 2 {
			bucket = args[1]
		}
		list, err := b.BackupList(ctx, s.k.Name, args[0], bucket)
		if err != nil {
			return err
		}
		sess.Header("%s backups", args[0])
		for _, x := range list {
			sess.Printf("%s  %10d  %s\n", x.Name, x.Size, x.Time.Format(time.RFC3339))
		}
		return nil
	}
}

func (s svc) backupRestore(b backupAPI) svcRun {
	return func(ctx context.Context, sess *Session, args []string) error {
		var bucket string
		args, err := NewFlags().String(&bucket, "bucket").Parse(args)
		if err != nil || len(args) < 1 || len(args) > 2 {
			return Failf("Usage: rivetr %s:backup-restore <service> [<backup>] [--bucket BUCKET]", s.k.Name)
		}
		backup := ""
		if len(args) == 2 {
			backup = args[1]
		}
		name, err := b.BackupRestore(ctx, s.k.Name, args[0], backup, bucket, io.Discard)
		if err != nil {
			return err
		}
		sess.Step("Restored %s into %s", name, args[0])
		return nil
	}
}

func (s svc) backupSchedule(b backupAPI) svcRun {
	return func(ctx context.Context, sess *Session, args []string) error {
		if len(args) < 2 || len(args) > 3 {
			return Failf("Usage: rivetr %s:backup-schedule <service> <cron> [<bucket>]", s.k.Name)
		}
		bucket := ""
		if len(args) == 3 {
			bucket = args[2]
		}
		if err := b.BackupSchedule(ctx, s.k.Name, args[0], args[1], bucket); err != nil {
			return err
		}
		sess.Step("Backups of %s scheduled: %s", args[0], args[1])
		return nil
	}
}

func (s svc) backupScheduleCat(b backupAPI) svcRun {
	return func(ctx context.Context, sess *Session, args []string) error {
		if len(args) != 1 {
			return Failf("Usage: rivetr %s:backup-schedule-cat <service>", s.k.Name)
		}
		spec, bucket, err := b.Schedule(ctx, s.k.Name, args[0])
		if err != nil {
			return err
		}
		if spec == "" {
			return Failf("No backup schedule for %s", args[0])
		}
		if bucket == "" {
			bucket = "(local)"
		}
		sess.Println(spec + " " + bucket)
		return nil
	}
}

func (s svc) backupUnschedule(b backupAPI) svcRun {
	return func(ctx context.Context, sess *Session, args []string) error {
		if len(args) != 1 {
			return Failf("Usage: rivetr %s:backup-unschedule <service>", s.k.Name)
		}
		if err := b.BackupSchedule(ctx, s.k.Name, args[0], "", ""); err != nil {
			return err
		}
		sess.Step("Backups of %s unscheduled", args[0])
		return nil
	}
}

func (s svc) backupEncryption(b backupAPI, set bool) svcRun {
	return func(ctx context.Context, sess *Session, args []string) error {
		want := 1
		if set {
			want = 2
		}
		if len(args) != want {
			if set {
				return Failf("Usage: rivetr %s:backup-set-encryption <service> <passphrase>", s.k.Name)
			}
			return Failf("Usage: rivetr %s:backup-unset-encryption <service>", s.k.Name)
		}
		pass := ""
		if set {
			if pass = args[1]; len(pass) < 8 {
				return Failf("The passphrase must have at least 8 characters")
			}
		}
		if err := b.BackupEncryption(ctx, s.k.Name, args[0], pass); err != nil {
			return err
		}
		if set {
			sess.Step("Backups of %s will be encrypted", args[0])
		} else {
			sess.Step("Backups of %s will not be encrypted", args[0])
		}
		return nil
	}
}
