//go:build !unix

package engine

// hardLimits are unknown off Unix.
func hardLimits() (nofile, nproc int64) { return 0, 0 }
