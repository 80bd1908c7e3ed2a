// Command rivetr is the single binary: `rivetr serve` runs the daemon;
// `rivetr CMD ARGS...` runs a command through the running daemon's unix
// socket with admin rights. main reads configuration, builds every part and
// wires them; nothing else imports it.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			return serve(args[1:])
		case "hook":
			return hook(args[1:])
		case "version", "--version", "-v":
			if len(args) == 1 {
				fmt.Println("rivetr " + version)
				return 0
			}
		}
	}
	return client(args)
}

// fail prints a one-line error in the command language's shape.
func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, " !     "+format+"\n", args...)
	return 1
}
