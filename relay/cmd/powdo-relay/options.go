package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// envPrefix + the option name in upper case with - as _ is each option's variable.
const envPrefix = "POWDO_RELAY_"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// listValue is a comma-separated, repeatable list option.
type listValue struct{ v *[]string }

func (l listValue) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listValue) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l.v = append(*l.v, p)
		}
	}
	return nil
}

// durationValue accepts Go durations and a day suffix ("7d").
type durationValue struct{ v *time.Duration }

func (d durationValue) String() string {
	if d.v == nil {
		return ""
	}
	if *d.v != 0 && *d.v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(*d.v/(24*time.Hour)), 10) + "d"
	}
	return d.v.String()
}

func (d durationValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("duration %q: want e.g. 7d, 12h or 90s", s)
		}
		*d.v = time.Duration(n * float64(24*time.Hour))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("duration %q: want e.g. 7d, 12h or 90s", s)
	}
	*d.v = v
	return nil
}

// sizeValue accepts bytes with an optional KiB/MiB/GiB (or KB/MB/GB, same meaning) suffix.
type sizeValue struct{ v *int64 }

func (z sizeValue) String() string {
	if z.v == nil {
		return ""
	}
	n := *z.v
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

func (z sizeValue) Set(s string) error {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.s); ok {
			s, mult = strings.TrimSpace(v), u.n
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("size %q: want bytes, or a number with KiB, MiB or GiB", s)
	}
	*z.v = n * mult
	return nil
}

// readConfigFile parses "name = value" lines (# comments); names are the long options.
func readConfigFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("config file %s line %d: want name = value", path, n)
		}
		name = strings.TrimPrefix(strings.TrimSpace(name), "--")
		value = strings.Trim(strings.TrimSpace(value), `"`)
		out[name] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return out, nil
}

// parseLayered parses args, then fills every option not given on the command line from its
// environment variable, then from the config file (named by --config or its variable).
func parseLayered(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var file map[string]string
	if cf := fs.Lookup("config"); cf != nil {
		path := cf.Value.String()
		if !set["config"] {
			path = getenv(envName("config"))
		}
		if path != "" {
			var err error
			if file, err = readConfigFile(path); err != nil {
				return err
			}
			for name := range file {
				if fs.Lookup(name) == nil || name == "config" {
					return fmt.Errorf("config file %s: unknown option %q", path, name)
				}
			}
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == "config" {
			return
		}
		src, v := "", ""
		if e := getenv(envName(f.Name)); e != "" {
			src, v = envName(f.Name), e
		} else if fv, ok := file[f.Name]; ok {
			src, v = "config file", fv
		} else {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s (from %s): %w", f.Name, src, err))
		}
	})
	return errors.Join(errs...)
}

// printUsage documents every option with its default and environment variable.
func printUsage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintln(w, synopsis)
	fmt.Fprintf(w, "\nEvery option can also be set by the environment variable shown, or by a line\n"+
		"\"name = value\" in the file given by --config. A command-line option wins over the\n"+
		"environment, which wins over the file.\n\nOptions:\n")
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, n := range names {
		f := fs.Lookup(n)
		fmt.Fprintf(w, "  --%s\n", n)
		fmt.Fprintf(w, "      %s\n", f.Usage)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			fmt.Fprintf(w, "      default: %s\n", f.DefValue)
		}
		fmt.Fprintf(w, "      env: %s\n", envName(n))
	}
}
