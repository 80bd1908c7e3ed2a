package services

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/rivetr/rivetr/apps"
)

// Backups: a dump (export) written to a local directory or to an
// S3-compatible bucket, optionally encrypted, on demand or on a cron
// schedule. Per-service settings (credentials, passphrase, schedule) are
// kept in the state's settings, global scope, namespace "service-backups",
// keys ENGINE.NAME.FIELD; secrets are never printed back.

// SettingsStore is where backup settings live (the core's settings).
type SettingsStore interface {
	Settings(ctx context.Context, scope, namespace string) (map[string]string, error)
	SetSetting(ctx context.Context, scope, namespace, key, value string) error
}

const backupNS = "service-backups"

// backupSettings are a service's backup settings.
type backupSettings struct {
	endpoint, access, secret, region, bucket string
	passphrase                               string
	schedule, scheduleBucket                 string
}

func settingKey(e *Engine, name, field string) string { return e.Name + "." + name + "." + field }

func (m *Manager) backupSettings(ctx context.Context, e *Engine, name string) (backupSettings, error) {
	all, err := m.Settings.Settings(ctx, apps.Global, backupNS)
	if err != nil {
		return backupSettings{}, err
	}
	g := func(f string) string { return all[settingKey(e, name, f)] }
	return backupSettings{
		endpoint: g("endpoint"), access: g("access"), secret: g("secret"), region: g("region"), bucket: g("bucket"),
		passphrase: g("passphrase"), schedule: g("schedule"), scheduleBucket: g("schedule-bucket"),
	}, nil
}

func (m *Manager) setBackup(ctx context.Context, e *Engine, name string, kv map[string]string) error {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := m.Settings.SetSetting(ctx, apps.Global, backupNS, settingKey(e, name, k), kv[k]); err != nil {
			return err
		}
	}
	return nil
}

// SetBackupAuth stores the S3 endpoint and credentials of a service.
func (m *Manager) SetBackupAuth(ctx context.Context, e *Engine, rec apps.ServiceRecord, endpoint, access, secret, region, bucket string) error {
	if _, err := newS3(endpoint, access, secret, region); err != nil {
		return apps.Errorf(apps.ErrInvalidValue, "%v", err)
	}
	if access == "" || secret == "" {
		return apps.Errorf(apps.ErrInvalidValue, "An access key and a secret are required")
	}
	if bucket != "" && !validBucket(bucket) {
		return apps.Errorf(apps.ErrInvalidValue, "Invalid bucket name %q", bucket)
	}
	return m.setBackup(ctx, e, rec.Name, map[string]string{"endpoint": endpoint, "access": access, "secret": secret, "region": region, "bucket": bucket})
}

// UnsetBackupAuth forgets them.
func (m *Manager) UnsetBackupAuth(ctx context.Context, e *Engine, rec apps.ServiceRecord) error {
	return m.setBackup(ctx, e, rec.Name, map[string]string{"endpoint": "", "access": "", "secret": "", "region": "", "bucket": ""})
}

// SetBackupEncryption encrypts the service's next backups with passphrase
// ("" stops encrypting).
func (m *Manager) SetBackupEncryption(ctx context.Context, e *Engine, rec apps.ServiceRecord, passphrase string) error {
	return m.setBackup(ctx, e, rec.Name, map[string]string{"passphrase": passphrase})
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// SetBackupSchedule backs the service up on spec (cron, 5 fields, UTC),
// to bucket or, when empty, to the local backup directory.
func (m *Manager) SetBackupSchedule(ctx context.Context, e *Engine, rec apps.ServiceRecord, spec, bucket string) error {
	if _, err := cronParser.Parse(spec); err != nil {
		return apps.Errorf(apps.ErrInvalidValue, "Invalid schedule %q: %v", spec, err)
	}
	if bucket != "" {
		if !validBucket(bucket) {
			return apps.Errorf(apps.ErrInvalidValue, "Invalid bucket name %q", bucket)
		}
		if st, err := m.backupSettings(ctx, e, rec.Name); err != nil {
			return err
		} else if st.access == "" {
			return apps.Errorf(apps.ErrInvalidValue, "No S3 credentials for %s: run %s:backup-auth first", rec.Name, e.Name)
		}
	}
	return m.setBackup(ctx, e, rec.Name, map[string]string{"schedule": spec, "schedule-bucket": bucket})
}

// UnsetBackupSchedule stops scheduled backups.
func (m *Manager) UnsetBackupSchedule(ctx context.Context, e *Engine, rec apps.ServiceRecord) error {
	return m.setBackup(ctx, e, rec.Name, map[string]string{"schedule": "", "schedule-bucket": ""})
}

// BackupSchedule returns the schedule ("" for none) and its bucket.
func (m *Manager) BackupSchedule(ctx context.Context, e *Engine, rec apps.ServiceRecord) (string, string, error) {
	st, err := m.backupSettings(ctx, e, rec.Name)
	return st.schedule, st.scheduleBucket, err
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// localDir is where a service's local backups go.
func (m *Manager) localDir(e *Engine, name string) string {
	return filepath.Join(m.BackupDir, e.Name, name)
}

// backupName names a new backup.
func backupName(e *Engine, rec apps.ServiceRecord, encrypted bool, now time.Time) string {
	n := fmt.Sprintf("%s-%s.%s", rec.Name, now.UTC().Format("20060102-150405"), e.DumpExt)
	if encrypted {
		n += ".enc"
	}
	return n
}

func s3Key(e *Engine, name, file string) string { return "rivetr/" + e.Name + "/" + name + "/" + file }

// Backup dumps the service into dir (local; "" for the default
// directory), or into bucket when set, and returns the backup's name.
func (m *Manager) Backup(ctx context.Context, e *Engine, rec apps.ServiceRecord, dir, bucket string) (string, error) {
	st, err := m.backupSettings(ctx, e, rec.Name)
	if err != nil {
		return "", err
	}
	name := backupName(e, rec, st.passphrase != "", time.Now())
	if bucket == "" {
		if dir == "" {
			dir = m.localDir(e, rec.Name)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("backup dir: %w", err)
		}
		path := filepath.Join(dir, name)
		if err := m.dumpTo(ctx, e, rec, path, st.passphrase); err != nil {
			return "", err
		}
		return path, nil
	}
	s3, err := m.s3For(st, bucket)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(m.BackupDir, 0o700); err != nil {
		return "", fmt.Errorf("backup dir: %w", err)
	}
	tmp, err := os.MkdirTemp(m.BackupDir, ".upload-")
	if err != nil {
		return "", fmt.Errorf("backup dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, name)
	if err := m.dumpTo(ctx, e, rec, path, st.passphrase); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	key := s3Key(e, rec.Name, name)
	if err := s3.put(ctx, bucket, key, f, size, hex.EncodeToString(h.Sum(nil))); err != nil {
		return "", err
	}
	return "s3://" + bucket + "/" + key, nil
}

// dumpTo writes the service's dump (encrypted with passphrase, if set) to
// path, atomically.
func (m *Manager) dumpTo(ctx context.Context, e *Engine, rec apps.ServiceRecord, path, passphrase string) error {
	f, err := os.OpenFile(path+".part", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(path + ".part")
	if passphrase == "" {
		err = m.Export(ctx, e, rec, f)
	} else {
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- encrypt(f, pr, passphrase) }()
		err = m.Export(ctx, e, rec, pw)
		pw.CloseWithError(err)
		if eerr := <-done; err == nil {
			err = eerr
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(path+".part", path)
}

func (m *Manager) s3For(st backupSettings, bucket string) (*s3Client, error) {
	if st.access == "" {
		return nil, apps.Errorf(apps.ErrInvalidValue, "No S3 credentials: run backup-auth first")
	}
	if bucket == "" {
		bucket = st.bucket
	}
	if !validBucket(bucket) {
		return nil, apps.Errorf(apps.ErrInvalidValue, "Invalid bucket name %q", bucket)
	}
	return newS3(st.endpoint, st.access, st.secret, st.region)
}

// Backups lists a service's backups, newest first: local ones, or those
// in bucket.
func (m *Manager) Backups(ctx context.Context, e *Engine, rec apps.ServiceRecord, bucket string) ([]apps.BackupInfo, error) {
	var out []apps.BackupInfo
	if bucket == "" {
		entries, err := os.ReadDir(m.localDir(e, rec.Name))
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		for _, ent := range entries {
			fi, err := ent.Info()
			if err != nil || !fi.Mode().IsRegular() || strings.HasSuffix(ent.Name(), ".part") {
				continue
			}
			out = append(out, apps.BackupInfo{Name: ent.Name(), Size: fi.Size(), Time: fi.ModTime().UTC()})
		}
	} else {
		st, err := m.backupSettings(ctx, e, rec.Name)
		if err != nil {
			return nil, err
		}
		s3, err := m.s3For(st, bucket)
		if err != nil {
			return nil, err
		}
		objs, err := s3.list(ctx, bucket, s3Key(e, rec.Name, ""))
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			out = append(out, apps.BackupInfo{Name: strings.TrimPrefix(o.Key, s3Key(e, rec.Name, "")), Size: o.Size, Time: o.LastModified.UTC()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name > out[j].Name }) // names carry the time
	return out, nil
}

// RestoreBackup imports a backup (by name, "" for the newest) of the
// service, local or from bucket; encrypted ones need the passphrase set.
func (m *Manager) RestoreBackup(ctx context.Context, e *Engine, rec apps.ServiceRecord, name, bucket string, out io.Writer) (string, error) {
	list, err := m.Backups(ctx, e, rec, bucket)
	if err != nil {
		return "", err
	}
	if name == "" {
		if len(list) == 0 {
			return "", apps.Errorf(apps.ErrInvalidValue, "%s has no backups", rec.Name)
		}
		name = list[0].Name
	}
	found := false
	for _, b := range list {
		found = found || b.Name == name
	}
	if !found || strings.ContainsAny(name, "/\\") {
		return "", apps.Errorf(apps.ErrInvalidValue, "No backup %q of %s (see %s:backup-list)", name, rec.Name, e.Name)
	}
	var r io.ReadCloser
	if bucket == "" {
		r, err = os.Open(filepath.Join(m.localDir(e, rec.Name), name))
	} else {
		var st backupSettings
		var s3 *s3Client
		if st, err = m.backupSettings(ctx, e, rec.Name); err == nil {
			if s3, err = m.s3For(st, bucket); err == nil {
				r, err = s3.get(ctx, bucket, s3Key(e, rec.Name, name))
			}
		}
	}
	if err != nil {
		return "", err
	}
	defer r.Close()
	var src io.Reader = r
	if strings.HasSuffix(name, ".enc") {
		st, err := m.backupSettings(ctx, e, rec.Name)
		if err != nil {
			return "", err
		}
		if st.passphrase == "" {
			return "", apps.Errorf(apps.ErrInvalidValue, "%s is encrypted: set its passphrase with %s:backup-set-encryption", name, e.Name)
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(decrypt(pw, r, st.passphrase)) }()
		src = pr
	}
	return name, m.Import(ctx, e, rec, src, out)
}

// Scheduler runs the scheduled backups; the schedules are read from the
// state at every minute, so they survive restarts and changes apply at
// once. A backup missed while rivetr was down is not made up for.
type Scheduler struct {
	M   *Manager
	Log func(format string, args ...any)

	mu      sync.Mutex
	running map[string]bool
}

// Run checks the schedules every minute until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	s.running = map[string]bool{}
	last := time.Now().UTC().Truncate(time.Minute)
	for {
		next := last.Add(time.Minute)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		s.tick(ctx, last, next)
		last = next
	}
}

// tick starts the backups due in (from, to].
func (s *Scheduler) tick(ctx context.Context, from, to time.Time) {
	all, err := s.M.Settings.Settings(ctx, apps.Global, backupNS)
	if err != nil {
		s.Log("backup schedules: %v", err)
		return
	}
	for key, spec := range all {
		prefix, ok := strings.CutSuffix(key, ".schedule")
		if !ok || spec == "" {
			continue
		}
		engine, name, ok := strings.Cut(prefix, ".")
		e := Engines[engine]
		if !ok || e == nil {
			continue
		}
		sched, err := cronParser.Parse(spec)
		if err != nil || sched.Next(from).After(to) {
			continue // not due in (from, to]
		}
		s.mu.Lock()
		busy := s.running[key]
		s.running[key] = true
		s.mu.Unlock()
		if busy {
			s.Log("backup of %s %s still running; skipping this slot", engine, name)
			continue
		}
		go func() {
			defer func() { s.mu.Lock(); delete(s.running, key); s.mu.Unlock() }()
			rec, err := s.M.Store.Service(ctx, engine, name)
			if err == nil {
				var where string
				where, err = s.M.Backup(ctx, e, rec, "", all[prefix+".schedule-bucket"])
				if err == nil {
					s.Log("scheduled backup of %s %s: %s", engine, name, where)
					return
				}
			}
			s.Log("scheduled backup of %s %s failed: %v", engine, name, err)
		}()
	}
}
