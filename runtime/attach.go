package engine

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rivetr/rivetr/apps"
)

// drainTimeout bounds how long RunAttached waits, once the container has
// exited, for the engine to finish sending its output.
const drainTimeout = 10 * time.Second

// stopRelayTimeout bounds the wait for an output copy to end once its
// connection is closed.
const stopRelayTimeout = 2 * time.Second

// execExitTimeout bounds how long Exec waits, once the output has ended,
// for the engine to report the process as exited.
const execExitTimeout = 10 * time.Second

// Wait blocks until the container is not running (at once if it already
// exited) and returns its exit code. A missing container is an error
// wrapping ErrNotFound; when ctx ends first, the error wraps ctx.Err().
func (e *Engine) Wait(ctx context.Context, id string) (int, error) {
	res := e.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-res.Result:
		if r.Error != nil && r.Error.Message != "" {
			return -1, e.errorf("wait for container %s: %s", id, r.Error.Message)
		}
		return int(r.StatusCode), nil
	case err := <-res.Error:
		switch {
		case cerrdefs.IsNotFound(err):
			err = ErrNotFound
		case ctx.Err() != nil:
			err = ctx.Err()
		}
		return -1, e.errorf("wait for container %s: %w", id, err)
	case <-ctx.Done():
		// The client delivers a late result on an unbuffered channel:
		// take it, so its goroutine ends.
		go func() {
			select {
			case <-res.Result:
			case <-res.Error:
			}
		}()
		return -1, e.errorf("wait for container %s: %w", id, ctx.Err())
	}
}

// Logs writes the container's output to out: stdout and stderr
// demultiplexed, or, for a container with a terminal, everything to
// out.Stdout as the terminal produced it. opts.Tail 0 means all lines;
// with opts.Timestamps each line starts with an RFC 3339 timestamp and a
// space. With opts.Follow it streams until the container stops or ctx
// ends (an error wrapping ctx.Err()). A nil writer discards its stream; a
// missing container is an error wrapping ErrNotFound.
func (e *Engine) Logs(ctx context.Context, id string, opts apps.LogOptions, out apps.Streams) error {
	res, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			err = ErrNotFound
		}
		return e.errorf("logs of container %s: %w", id, ctxErr(ctx, err))
	}
	tty := res.Container.Config != nil && res.Container.Config.Tty
	tail := "all"
	if opts.Tail > 0 {
		tail = strconv.Itoa(opts.Tail)
	}
	rc, err := e.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{
		ShowStdout: true,
		ShowStderr: true,
		Follow:     opts.Follow,
		Tail:       tail,
		Timestamps: opts.Timestamps,
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			err = ErrNotFound
		}
		return e.errorf("logs of container %s: %w", id, ctxErr(ctx, err))
	}
	defer rc.Close()
	if err := copyOutput(rc, tty, out); err != nil {
		return e.errorf("logs of container %s: %w", id, ctxErr(ctx, err))
	}
	if err := ctx.Err(); err != nil {
		return e.errorf("logs of container %s: %w", id, err)
	}
	return nil
}

// RunAttached runs a one-off container and returns its exit code. The
// container is created as Run creates it (on the rivetr network, with the
// spec's mounts, resources and terminal) but never restarted
// (spec.RestartPolicy is ignored). Its output is attached before it starts,
// so none is lost: demultiplexed to st.Stdout and st.Stderr, or, with
// spec.TTY, as the terminal produced it to st.Stdout. With spec.Stdin,
// st.Stdin (nothing, when nil) is copied to the container's stdin, which
// is closed when st.Stdin reaches EOF.
//
// RunAttached returns once the container has exited and its output has
// been written (or drainTimeout after the exit, should the engine keep the
// stream open). The container is removed in every case: when ctx ends,
// when the output cannot be written while it runs, or on any other error,
// it is killed first and -1 is returned with the error. A Read of st.Stdin that is
// still blocked when RunAttached returns is left behind; its data is
// dropped.
func (e *Engine) RunAttached(ctx context.Context, spec apps.ContainerSpec, st apps.Streams) (code int, err error) {
	if err := e.checkSpec(spec); err != nil {
		return -1, err
	}
	if _, err := e.ensureNetwork(ctx); err != nil {
		return -1, err
	}
	if err := e.ensureVolumes(ctx, spec); err != nil {
		return -1, err
	}
	publish := spec.Port > 0 && e.loopback.Load()
	cfg, hc, netCfg := e.containerConfig(spec, container.RestartPolicy{Name: container.RestartPolicyDisabled}, publish)
	cfg.AttachStdout, cfg.AttachStderr = true, true
	if spec.Stdin {
		cfg.AttachStdin, cfg.StdinOnce = true, true
	}
	created, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:             spec.Name,
		Config:           cfg,
		HostConfig:       hc,
		NetworkingConfig: netCfg,
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			e.forgetNetwork() // the image, or the network, is gone
		}
		return -1, e.errorf("create container %s: %w", spec.Name, ctxErr(ctx, err))
	}
	for _, w := range created.Warnings {
		e.log.Warn().Str("container", spec.Name).Msg(w)
	}
	id := created.ID
	started := false
	defer func() { e.removeOneOff(ctx, spec.Name, id, started && err != nil) }()

	att, err := e.cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{
		Stream: true, Stdin: spec.Stdin, Stdout: true, Stderr: true,
	})
	if err != nil {
		// Podman prepares the container (runc create) on attach, so a
		// broken command fails here, and the client drops the engine's
		// reason along with the refused upgrade. A start reports it.
		if ctx.Err() == nil {
			if _, serr := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); serr != nil {
				return -1, e.errorf("start container %s: %w", spec.Name, ctxErr(ctx, serr))
			}
			started = true
		}
		return -1, e.errorf("attach to container %s: %w", spec.Name, ctxErr(ctx, err))
	}
	out := relayOutput(att.Reader, spec.TTY, st)
	defer out.stop(&att.HijackedResponse)

	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return -1, e.errorf("start container %s: %w", spec.Name, ctxErr(ctx, err))
	}
	started = true
	if spec.Stdin {
		relayInput(&att.HijackedResponse, st.Stdin)
	}

	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	type exit struct {
		code int
		err  error
	}
	exited := make(chan exit, 1)
	go func() {
		code, err := e.Wait(waitCtx, id)
		exited <- exit{code, err}
	}()

	code = -1
	outDone := out.done
	var drain <-chan time.Time
	for outDone != nil || exited != nil {
		select {
		case <-outDone:
			outDone = nil
			switch {
			case out.err == nil:
			case exited == nil:
				// The command has run: its exit code is the result.
				e.log.Warn().Err(out.err).Str("container", spec.Name).Msg("output of an exited one-off container")
			default:
				return -1, e.errorf("run container %s: output: %w", spec.Name, out.err)
			}
		case x := <-exited:
			exited = nil
			if x.err != nil {
				if ctx.Err() != nil {
					return -1, e.errorf("run container %s: %w", spec.Name, ctx.Err())
				}
				return -1, x.err
			}
			code = x.code
			if outDone != nil {
				drain = time.After(drainTimeout)
			}
		case <-drain:
			e.log.Warn().Str("container", spec.Name).Dur("after", drainTimeout).
				Msg("container exited but its output stream is still open; closing it")
			outDone = nil
		case <-ctx.Done():
			return -1, e.errorf("run container %s: %w", spec.Name, ctx.Err())
		}
	}
	return code, nil
}

// removeOneOff removes RunAttached's container, even when ctx is done;
// kill first stops it at once if it may still run (Podman's forced
// remove would wait for the stop timeout).
func (e *Engine) removeOneOff(ctx context.Context, name, id string, kill bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if kill {
		if _, err := e.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"}); err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
			e.log.Debug().Err(err).Str("container", name).Msg("kill one-off container")
		}
	}
	if _, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		e.log.Error().Err(err).Str("container", name).Msg("remove one-off container")
	}
}

// Exec runs cmd in the running container id and returns its exit code.
// Output is written to st as RunAttached writes it (raw to st.Stdout with
// tty); st.Stdin, when set, is copied to the process, whose stdin is
// closed at its EOF. It returns once the output has ended and the engine
// reports the exit code. When ctx ends first, Exec returns an error
// wrapping ctx.Err() and the process is left running in the container
// (the engine offers no way to stop one exec). A missing container is an
// error wrapping ErrNotFound; one that is not running is an error too.
func (e *Engine) Exec(ctx context.Context, id string, cmd []string, tty bool, st apps.Streams) (int, error) {
	if len(cmd) == 0 {
		return -1, e.errorf("exec in container %s: no command", id)
	}
	stdin := st.Stdin != nil
	ex, err := e.cli.ExecCreate(ctx, id, client.ExecCreateOptions{
		TTY:          tty,
		AttachStdin:  stdin,
		AttachStdout: true,
		AttachStderr: true,
		Cmd:          cmd,
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			err = ErrNotFound
		}
		return -1, e.errorf("exec in container %s: %w", id, ctxErr(ctx, err))
	}
	att, err := e.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: tty})
	if err != nil {
		return -1, e.errorf("exec in container %s: start: %w", id, ctxErr(ctx, err))
	}
	out := relayOutput(att.Reader, tty, st)
	defer out.stop(&att.HijackedResponse)
	if stdin {
		relayInput(&att.HijackedResponse, st.Stdin)
	}
	select {
	case <-out.done:
		if out.err != nil {
			return -1, e.errorf("exec in container %s: output: %w", id, ctxErr(ctx, out.err))
		}
	case <-ctx.Done():
		return -1, e.errorf("exec in container %s: %w", id, ctx.Err())
	}

	// The stream ends when the process exits; the engine may take a
	// moment more to record its exit code.
	deadline := time.Now().Add(execExitTimeout)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		res, err := e.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return -1, e.errorf("exec in container %s: inspect: %w", id, ctxErr(ctx, err))
		}
		if !res.Running {
			return res.ExitCode, nil
		}
		if time.Now().After(deadline) {
			return -1, e.errorf("exec in container %s: output ended but the process still runs after %s", id, execExitTimeout)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return -1, e.errorf("exec in container %s: %w", id, ctx.Err())
		}
	}
}

// outputRelay copies an attached process's output to its streams in the
// background.
type outputRelay struct {
	done chan struct{} // closed when the copy has ended
	err  error         // how it ended; read after done
}

func relayOutput(r io.Reader, tty bool, st apps.Streams) *outputRelay {
	o := &outputRelay{done: make(chan struct{})}
	go func() {
		o.err = copyOutput(r, tty, st)
		close(o.done)
	}()
	return o
}

// stop closes the connection and waits, for up to stopRelayTimeout (a
// writer may block), until the copy has ended, so that nothing reaches
// the streams once the caller has returned.
func (o *outputRelay) stop(conn *client.HijackedResponse) {
	conn.Close()
	select {
	case <-o.done:
	case <-time.After(stopRelayTimeout):
	}
}

// copyOutput copies an engine output stream to st: demultiplexed into
// st.Stdout and st.Stderr, or, for a terminal, raw to st.Stdout. Nil
// writers discard.
func copyOutput(r io.Reader, tty bool, st apps.Streams) error {
	stdout, stderr := orDiscard(st.Stdout), orDiscard(st.Stderr)
	var err error
	if tty {
		_, err = io.Copy(stdout, r)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, r)
	}
	return err
}

// relayInput copies in (nothing, when nil) to an attached process's stdin
// in the background, then half-closes the connection so the process
// reads EOF. A failed write (the connection closed) ends it too.
func relayInput(conn *client.HijackedResponse, in io.Reader) {
	go func() {
		if in != nil {
			io.Copy(conn.Conn, in)
		}
		conn.CloseWrite()
	}()
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// ctxErr prefers ctx's error, when ctx is done, over the transport error
// it caused, so callers can match context.Canceled.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return cerr
	}
	return err
}
