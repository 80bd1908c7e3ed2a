package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"unsafe"
)

// Parsing of HTTP/1.1 message heads for the fast path (fast.go). The
// parser is strict on purpose: anything it does not fully understand makes
// the request go to the net/http path, which handles every case of the
// protocol; a response it does not understand is a 502.

const maxFastHeaders = 64

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")

	errHeadTooLarge = errors.New("message head larger than the buffer")
)

// field is one header line, both parts pointing into the read buffer.
type field struct{ name, value []byte }

// fastRequest is a parsed request head. Its slices point into the client
// connection's buffer and are valid until the head is discarded.
type fastRequest struct {
	method, target []byte
	host           []byte
	fields         [maxFastHeaders]field // forwarded as they are
	n              int
	xff            [8][]byte // X-Forwarded-For values, in order
	nxff           int
	requestID      []byte // the client's first X-Request-Id
	contentLength  int64
	close          bool // the client sent Connection: close
	teTrailers     bool // the client accepts trailers (TE: trailers)
	head           bool // method HEAD: the response has no body
}

// fastResponse is a parsed response head, pointing into the upstream
// connection's buffer.
type fastResponse struct {
	status        []byte // "200 OK"
	code          int
	fields        [maxFastHeaders]field
	n             int
	drop          [8][]byte // header names listed in Connection, not forwarded
	ndrop         int
	contentLength int64 // -1: none
	chunked       bool
	close         bool // the upstream closes the connection after the body
	hasDate       bool
}

// peekHead waits until br holds a whole message head and returns it (up to
// and including the blank line) without consuming it. beforeWait, when
// set, runs once before the first read that may block (to set a deadline
// only for heads that are not all there). empty reports that the
// connection ended before any byte came.
func peekHead(br *bufio.Reader, beforeWait func()) (head []byte, empty bool, err error) {
	for {
		n := br.Buffered()
		if n > 0 {
			b, _ := br.Peek(n)
			if i := bytes.Index(b, crlfcrlf); i >= 0 {
				return b[:i+4], false, nil
			}
			if n == br.Size() {
				return nil, false, errHeadTooLarge
			}
		}
		if beforeWait != nil {
			beforeWait()
			beforeWait = nil
		}
		if _, err := br.Peek(n + 1); err != nil {
			return nil, n == 0, err
		}
	}
}

// nextLine splits the first CRLF-terminated line off b; ok is false for a
// bare LF, a NUL or a CR inside the line.
func nextLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.Index(b, crlf)
	if i < 0 {
		return nil, nil, false
	}
	line = b[:i]
	for _, c := range line {
		if c == '\n' || c == '\r' || c == 0 {
			return nil, nil, false
		}
	}
	return line, b[i+2:], true
}

// splitField parses "Name: value" with the value's surrounding spaces and
// tabs trimmed.
func splitField(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return nil, nil, false
	}
	return line[:colon], trimOWS(line[colon+1:]), true
}

// forFields calls f for each header line of rest (a head without its
// first line) up to the blank line. It returns false for a malformed line
// or when f does.
func forFields(rest []byte, f func(name, value []byte) bool) bool {
	for {
		line, r, ok := nextLine(rest)
		if !ok {
			return false
		}
		if len(line) == 0 {
			return true
		}
		rest = r
		name, value, ok := splitField(line)
		if !ok || !f(name, value) {
			return false
		}
	}
}

// parseRequest parses head into req. It returns false for anything the
// fast path leaves to net/http: another version than HTTP/1.1, a target
// that is not a path, bodies with Transfer-Encoding, upgrades, Expect,
// Connection options other than close and keep-alive, repeated Host or
// Content-Length, and malformed lines.
func parseRequest(head []byte, req *fastRequest) bool {
	*req = fastRequest{}
	line, rest, ok := nextLine(head)
	if !ok {
		return false
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return false
	}
	req.method, line = line[:sp], line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 || string(line[sp+1:]) != "HTTP/1.1" || line[0] != '/' {
		return false
	}
	req.target = line[:sp]
	for _, c := range req.target {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	req.head = string(req.method) == "HEAD"
	hasLength := false
	ok = forFields(rest, func(name, value []byte) bool {
		switch {
		case fold(name, "Host"):
			if req.host != nil || len(value) == 0 {
				return false
			}
			req.host = value
		case fold(name, "Content-Length"):
			n, ok := parseLength(value)
			if hasLength || !ok {
				return false
			}
			hasLength, req.contentLength = true, n
			req.fields[req.n] = field{name, value}
			req.n++
		case fold(name, "Transfer-Encoding"), fold(name, "Upgrade"), fold(name, "Expect"):
			return false
		case fold(name, "Connection"):
			for tok := range tokens(value) {
				switch {
				case fold(tok, "close"):
					req.close = true
				case fold(tok, "keep-alive"):
				default:
					return false
				}
			}
		case fold(name, "TE"):
			for tok := range tokens(value) {
				if fold(tok, "trailers") {
					req.teTrailers = true
				}
			}
		case fold(name, "Keep-Alive"), fold(name, "Proxy-Connection"), fold(name, "Trailer"),
			fold(name, "X-Forwarded-Host"), fold(name, "X-Forwarded-Proto"),
			fold(name, "X-Forwarded-Port"), fold(name, "Forwarded"):
			// Hop-by-hop, or set by the proxy alone.
		case fold(name, "X-Forwarded-For"):
			if req.nxff == len(req.xff) {
				return false
			}
			req.xff[req.nxff] = value
			req.nxff++
		case fold(name, "X-Request-Id"):
			if req.requestID == nil {
				req.requestID = value
			}
		default:
			if req.n == maxFastHeaders {
				return false
			}
			req.fields[req.n] = field{name, value}
			req.n++
		}
		return req.n < maxFastHeaders
	})
	return ok && req.host != nil
}

// parseResponse parses an upstream's response head. It returns false for
// a head the proxy cannot relay faithfully (then the client gets 502).
func parseResponse(head []byte, resp *fastResponse) bool {
	*resp = fastResponse{contentLength: -1}
	line, rest, ok := nextLine(head)
	if !ok || len(line) < 12 || (string(line[:9]) != "HTTP/1.1 " && string(line[:9]) != "HTTP/1.0 ") {
		return false
	}
	http10 := line[7] == '0'
	resp.close = http10
	resp.status = line[9:]
	s := resp.status
	if s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' || (len(s) > 3 && s[3] != ' ') {
		return false
	}
	resp.code = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	if !forFields(rest, func(name, value []byte) bool {
		switch {
		case fold(name, "Content-Length"):
			n, ok := parseLength(value)
			if !ok || (resp.contentLength >= 0 && n != resp.contentLength) {
				return false
			}
			if resp.contentLength < 0 {
				resp.contentLength = n
				resp.fields[resp.n] = field{name, value}
				resp.n++
			}
		case fold(name, "Transfer-Encoding"):
			if !fold(value, "chunked") || resp.chunked {
				return false
			}
			resp.chunked = true
		case fold(name, "Connection"):
			for tok := range tokens(value) {
				switch {
				case fold(tok, "close"):
					resp.close = true
				case fold(tok, "keep-alive"):
					if http10 {
						resp.close = false
					}
				default:
					if resp.ndrop == len(resp.drop) {
						return false
					}
					resp.drop[resp.ndrop] = tok
					resp.ndrop++
				}
			}
		case fold(name, "Keep-Alive"), fold(name, "Proxy-Connection"), fold(name, "TE"),
			fold(name, "Upgrade"), fold(name, "Proxy-Authenticate"), fold(name, "Proxy-Authorization"),
			fold(name, "X-Request-Id"):
			// Hop-by-hop, or the proxy's own (X-Request-Id).
		default:
			if fold(name, "Date") {
				resp.hasDate = true
			}
			if resp.n == maxFastHeaders {
				return false
			}
			resp.fields[resp.n] = field{name, value}
			resp.n++
		}
		return true
	}) {
		return false
	}
	if resp.chunked && resp.contentLength >= 0 {
		// Transfer-Encoding wins (RFC 9112 6.3); the length is not sent on.
		for i := range resp.n {
			if fold(resp.fields[i].name, "Content-Length") {
				copy(resp.fields[i:], resp.fields[i+1:resp.n])
				resp.n--
				break
			}
		}
		resp.contentLength = -1
	}
	return true
}

// dropped reports whether name is listed in the response's Connection.
func (resp *fastResponse) dropped(name []byte) bool {
	for _, d := range resp.drop[:resp.ndrop] {
		if bytes.EqualFold(d, name) {
			return true
		}
	}
	return false
}

// tokens yields the comma-separated tokens of a header value, trimmed.
func tokens(v []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			var tok []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				tok, v = v, nil
			}
			if tok = trimOWS(tok); len(tok) > 0 && !yield(tok) {
				return
			}
		}
	}
}

// parseLength parses a Content-Length: digits only, at most 18.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseChunkSize parses a chunk-size line ("1a2b;ext\r\n").
func parseChunkSize(line []byte) (int64, bool) {
	line = bytes.TrimSuffix(line, crlf)
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = trimOWS(line)
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | int64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// fold is an ASCII case-insensitive comparison with a constant.
func fold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c, d := b[i], s[i]
		if c|0x20 != d|0x20 || (c|0x20 < 'a' || c|0x20 > 'z') && c != d {
			return false
		}
	}
	return true
}

// isToken reports whether b is an RFC 9110 token (method, header name).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// bytesString views b as a string without copying; the string must not
// outlive b's contents (it is used for lookups only).
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
