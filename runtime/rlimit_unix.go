//go:build unix

package engine

import "golang.org/x/sys/unix"

// hardLimits returns this process's hard RLIMIT_NOFILE and RLIMIT_NPROC;
// 0 means unknown or unlimited.
func hardLimits() (nofile, nproc int64) {
	return hardLimit(unix.RLIMIT_NOFILE), hardLimit(unix.RLIMIT_NPROC)
}

func hardLimit(resource int) int64 {
	var r unix.Rlimit
	if err := unix.Getrlimit(resource, &r); err != nil || r.Max > 1<<62 {
		return 0
	}
	return int64(r.Max)
}
