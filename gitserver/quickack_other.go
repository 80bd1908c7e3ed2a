//go:build !linux

package gitserver

import "net"

// quickAckListener is a no-op outside Linux.
type quickAckListener struct{ net.Listener }
