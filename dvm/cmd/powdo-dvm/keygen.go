package main

import (
	"context"
	"fmt"

	"github.com/nbd-wtf/go-nostr/nip19"

	"pow.do/dvm/daemon"
)

func init() {
	register(command{
		name:    "keygen",
		summary: "create the DVM's secret key in a new file (mode 0600) and print its public key",
		run:     runKeygen,
	})
}

func runKeygen(ctx context.Context, args []string) error {
	fs := newFlagSet("keygen")
	out := fs.String("out", "", "`file` to create; an existing file is never overwritten")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return usageError{"--out FILE is required, and nothing else"}
	}
	pub, err := daemon.WriteNewKey(*out)
	if err != nil {
		return err
	}
	npub, _ := nip19.EncodePublicKey(pub)
	fmt.Fprintf(stdout, "secret key written to %s (mode 0600)\npubkey %s\n%s\n", *out, pub, npub)
	fmt.Fprintln(stdout, "Make this pubkey an admin of your relays (powdo-relay --admin), then run `powdo-dvm run`.")
	return nil
}
