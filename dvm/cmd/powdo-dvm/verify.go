package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/nbd-wtf/go-nostr/nip19"

	"pow.do/dvm/diary/evidence"
	"pow.do/shared/proto"
)

func init() {
	register(command{
		name:    "verify",
		summary: "check a work-diary evidence export (ZIP): signatures, hashes and the hash chain, saying exactly what fails",
		run:     runVerify,
	})
}

func runVerify(ctx context.Context, args []string) error {
	fs := newFlagSet("verify")
	dvm := fs.String("dvm", "", "require the export to be signed by this DVM (`npub` or 64 hex)")
	quiet := fs.Bool("quiet", false, "print only failures, warnings and the summary")
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintln(fs.Output(), "\nusage: powdo-dvm verify [--dvm NPUB] [--quiet] FILE.zip\nExit status: 0 if every check passed (warnings allowed), 1 if any failed.")
	}
	var pos []string
	for rest := args; ; {
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	if len(pos) != 1 {
		return usageError{"name one export FILE"}
	}
	var opt evidence.Options
	if *dvm != "" {
		pk := strings.ToLower(*dvm)
		if strings.HasPrefix(pk, "npub1") {
			prefix, v, err := nip19.Decode(pk)
			if err != nil || prefix != "npub" {
				return usageError{fmt.Sprintf("--dvm %q is not a valid npub", *dvm)}
			}
			pk = v.(string)
		}
		if !proto.ValidPubkey(pk) {
			return usageError{fmt.Sprintf("--dvm %q is not a public key", *dvm)}
		}
		opt.DVM = pk
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", pos[0])
	}
	rep, err := evidence.Verify(f, st.Size(), opt)
	if err != nil {
		return err
	}
	fails, warns := 0, 0
	for _, fd := range rep.Findings {
		switch fd.Level {
		case evidence.Fail:
			fails++
		case evidence.Warn:
			warns++
		case evidence.Info:
			if *quiet {
				continue
			}
		}
		fmt.Fprintln(stdout, fd.String())
	}
	summary := fmt.Sprintf("%d of %d segments verified, %d failures, %d warnings", rep.Verified, rep.Segments, fails, warns)
	if !rep.OK() {
		fmt.Fprintln(stdout, "FAILED:", summary)
		return fmt.Errorf("%s does not verify: %s", pos[0], summary)
	}
	fmt.Fprintln(stdout, "OK:", summary)
	return nil
}
