package kimai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// APIError is every failure of a Kimai call: a refusal with Kimai's status
// and message, a validation failure with its tree, or (Status 0) no
// answer at all.
type APIError struct {
	Method string
	Path   string // without query string
	// Status is the HTTP status, 0 when no response arrived.
	Status int
	// Message is Kimai's "message" (or the WWW-Authenticate description
	// of a refused Bearer token, or the status text).
	Message string
	// Validation is set for 400 "Validation Failed".
	Validation *Validation
	// Err is the transport or decoding cause, if any.
	Err error
}

// Validation is Kimai's form error tree flattened: global errors, and per
// field (nested fields joined with ".") the messages.
type Validation struct {
	Global []string
	Fields map[string][]string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kimai %s %s: ", e.Method, e.Path)
	if e.Status == 0 {
		b.WriteString("no response")
	} else {
		fmt.Fprintf(&b, "%d", e.Status)
	}
	if e.Message != "" {
		b.WriteString(" " + e.Message)
	}
	if v := e.Validation; v != nil {
		var parts []string
		parts = append(parts, v.Global...)
		fields := make([]string, 0, len(v.Fields))
		for f := range v.Fields {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		for _, f := range fields {
			parts = append(parts, f+": "+strings.Join(v.Fields[f], " "))
		}
		if len(parts) > 0 {
			b.WriteString(" (" + strings.Join(parts, "; ") + ")")
		}
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// Temporary reports whether the same call may succeed later unchanged:
// no response (network, timeout, cancellation), 5xx, 408 and 429. A
// refusal (4xx) needs a change by someone first.
//
// A temporary error on a write does not prove the write did not happen:
// the request may have reached Kimai before the connection failed.
func (e *APIError) Temporary() bool {
	switch {
	case e.Status == 0:
		return !errors.Is(e.Err, errTooLarge)
	case e.Status >= 500:
		return true
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests:
		return true
	}
	return false
}

// IsTemporary reports whether err is an *APIError that may go away by itself.
func IsTemporary(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Temporary()
}

// IsNotFound reports whether Kimai answered 404.
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// IsValidation reports whether Kimai refused a form, returning the tree.
func IsValidation(err error) (*Validation, bool) {
	var e *APIError
	if errors.As(err, &e) && e.Validation != nil {
		return e.Validation, true
	}
	return nil, false
}

func statusOf(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

var errTooLarge = errors.New("response larger than the configured limit")

var wwwAuthDescription = regexp.MustCompile(`error_description="([^"]*)"`)

// errorFromResponse decodes Kimai's error bodies: {"code","message"},
// {"message"} (legacy login), the validation tree, or an empty 401 with
// WWW-Authenticate.
func errorFromResponse(method, path string, status int, header http.Header, body []byte) *APIError {
	e := &APIError{Method: method, Path: path, Status: status}
	if m := wwwAuthDescription.FindStringSubmatch(header.Get("WWW-Authenticate")); m != nil {
		e.Message = m[1]
	}
	var wire struct {
		Message string          `json:"message"`
		Errors  json.RawMessage `json:"errors"`
	}
	if len(bytes.TrimSpace(body)) > 0 && json.Unmarshal(body, &wire) == nil {
		if wire.Message != "" {
			e.Message = wire.Message
		}
		if len(wire.Errors) > 0 && string(wire.Errors) != "null" {
			v := &Validation{Fields: map[string][]string{}}
			if err := flattenTree(wire.Errors, "", v); err == nil {
				e.Validation = v
			}
		}
	} else if len(body) > 0 && e.Message == "" {
		e.Message = snippet(body)
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// flattenTree walks {"errors":[...],"children":{name:{...}}}. Kimai (PHP)
// may send an empty child as {} or [].
func flattenTree(raw json.RawMessage, prefix string, v *Validation) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == '[' {
		return nil // PHP's empty array
	}
	var node struct {
		Errors   []string                   `json:"errors"`
		Children map[string]json.RawMessage `json:"children"`
	}
	if err := json.Unmarshal(raw, &node); err != nil {
		// A children list encoded as [] decodes into the map with an
		// error; retry without it.
		var only struct {
			Errors []string `json:"errors"`
		}
		if err2 := json.Unmarshal(raw, &only); err2 != nil {
			return err
		}
		node.Errors = only.Errors
	}
	if prefix == "" {
		v.Global = append(v.Global, node.Errors...)
	} else if len(node.Errors) > 0 {
		v.Fields[prefix] = append(v.Fields[prefix], node.Errors...)
	}
	for name, child := range node.Children {
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		if err := flattenTree(child, p, v); err != nil {
			return err
		}
	}
	return nil
}

// snippet keeps an unexpected (HTML, proxy) body short and printable.
func snippet(b []byte) string {
	const max = 200
	s := string(b)
	if !utf8.ValidString(s) {
		return fmt.Sprintf("%d bytes of non-text body", len(b))
	}
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}
