// Package control connects the local `rivetr CMD` client to the running
// daemon over the unix socket $RIVETR_DATA_DIR/rivetr.sock (mode 0600).
//
// The protocol is a stream of frames, each a kind byte, a big-endian
// uint32 length and a payload. The client sends one request frame (JSON:
// the arguments), then stdin frames and a stdin-close frame; the daemon
// sends stdout and stderr frames and ends with one exit frame holding the
// status. Whoever can open the socket is the server's admin.
package control
