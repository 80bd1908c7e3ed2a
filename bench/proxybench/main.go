// Command proxybench serves rivetr's proxy package on a loopback port for
// bench/proxy.sh: it routes one host (or -routes hosts) to an upstream, so
// the proxy can be measured with wrk beside nginx and caddy without
// containers.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	upstream := flag.String("upstream", "", "host:port of the backend")
	host := flag.String("host", "bench.localhost", "host routed to the upstream")
	routes := flag.Int("routes", 1, "total routes in the table (extra ones go to dummy apps)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here until SIGTERM/SIGINT")
	static := flag.String("static", "", "serve this directory as a static site on -host instead of -upstream")
	flag.Parse()
	if *upstream == "" && *static == "" {
		log.Fatal("proxybench: -upstream or -static is required")
	}
	p := proxy.New(zerolog.Nop(), proxy.Options{})
	if *static != "" {
		p.SetStatic("bench", []string{*host}, apps.StaticSite{Dir: *static})
	} else {
		p.SetRoute("bench", []string{*host}, []string{*upstream})
	}
	for i := 1; i < *routes; i++ {
		p.SetRoute(fmt.Sprintf("app%d", i), []string{fmt.Sprintf("app%d.localhost", i)}, []string{"127.0.0.1:9"})
	}
	// A daemon with this many apps has long settled: collect the garbage of
	// building the table now, not during the measurement.
	runtime.GC()
	debug.FreeOSMemory()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
		pprof.StopCPUProfile()
		os.Exit(0)
	}()
	log.Fatal(p.Serve(ln))
}
