// Command powdo-relay is the pow.do public server: a whitelisted Nostr relay and Blossom
// blob store on one port (serve, the default), or a strfry write-policy plugin
// (strfry-policy). Run it with --help for every option.
package main

import (
	"fmt"
	"io"
	"os"

	"pow.do/relay/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			return runServe(args[1:], stdout, stderr, getenv)
		case "strfry-policy":
			return runStrfry(args[1:], stdin, stdout, stderr, getenv)
		case "version", "--version":
			fmt.Fprintf(stdout, "powdo-relay %s\n", server.Version)
			return 0
		}
	}
	return runServe(args, stdout, stderr, getenv)
}
