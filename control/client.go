package control

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// ErrNotRunning means no daemon answers on the socket.
var ErrNotRunning = errors.New("rivetr is not running")

// Call sends args to the daemon at socket, relays stdin, stdout and stderr,
// and returns the command's exit status.
func Call(socket string, args []string, st Streams) (int, error) {
	return CallEnv(socket, Request{Args: args}, st)
}

// CallEnv is Call with a full request, environment included.
func CallEnv(socket string, r Request, st Streams) (int, error) {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return 1, fmt.Errorf("%w (no daemon listening on %s; start it with `rivetr serve`)", ErrNotRunning, socket)
		}
		return 1, fmt.Errorf("connect to %s: %w", socket, err)
	}
	defer conn.Close()
	req, err := json.Marshal(r)
	if err != nil {
		return 1, err
	}
	var mu sync.Mutex
	if err := writeFrame(conn, kindRequest, req); err != nil {
		return 1, fmt.Errorf("send request: %w", err)
	}
	if st.Stdin != nil {
		go func() {
			w := &frameWriter{mu: &mu, w: conn, kind: kindStdin}
			io.Copy(w, st.Stdin)
			mu.Lock()
			writeFrame(conn, kindStdinClose, nil)
			mu.Unlock()
		}()
	} else {
		mu.Lock()
		writeFrame(conn, kindStdinClose, nil)
		mu.Unlock()
	}
	for {
		kind, data, err := readFrame(conn)
		if err != nil {
			return 1, fmt.Errorf("connection to rivetr closed before the command ended: %w", err)
		}
		switch kind {
		case kindStdout:
			st.Stdout.Write(data)
		case kindStderr:
			st.Stderr.Write(data)
		case kindExit:
			if len(data) != 4 {
				return 1, fmt.Errorf("bad exit frame")
			}
			return int(int32(binary.BigEndian.Uint32(data))), nil
		}
	}
}
