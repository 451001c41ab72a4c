package engineapi

import (
	"errors"
	"time"
)

// ProblemCode classifies a problem so the UI can pick words and icons for it.
type ProblemCode string

const (
	ProblemRelayUnreachable   ProblemCode = "relay_unreachable"   // no relay answers
	ProblemBlossomUnreachable ProblemCode = "blossom_unreachable" // no Blossom server takes uploads
	ProblemKeyNotAllowed      ProblemCode = "key_not_allowed"     // the relay refuses this worker's key
	ProblemInviteInvalid      ProblemCode = "invite_invalid"      // the link is not a pow.do invite
	ProblemInviteExpired      ProblemCode = "invite_expired"      // the invite was used or expired
	ProblemActivityWatch      ProblemCode = "activitywatch_not_found"
	ProblemDiskQuota          ProblemCode = "disk_quota" // the outbox nears or passed its quota
	ProblemRejected           ProblemCode = "segment_rejected"
	ProblemWrongPassphrase    ProblemCode = "wrong_passphrase"
	ProblemInvalidInput       ProblemCode = "invalid_input" // a form value is wrong; Message says which
	ProblemNotReady           ProblemCode = "not_ready"     // the action does not fit the current state
	ProblemUnsupported        ProblemCode = "unsupported"   // this engine cannot do that (the preview)
	ProblemInternal           ProblemCode = "internal"
)

// Problem is an error the worker can understand and act on. Engines return it from
// methods and put the most pressing one in State.Error. Message and Action are shown
// and logged: they must never contain a key, a passphrase or an invite secret.
type Problem struct {
	Code ProblemCode `json:"code"`
	// Message says what went wrong, in the worker's terms.
	Message string `json:"message"`
	// Action says what to do about it.
	Action string `json:"action"`
	// At is when the problem was seen (State.Error only).
	At *time.Time `json:"at,omitempty" ts_type:"string"`
	// Cause is the underlying error, for logs; never shown or sent to the UI.
	Cause error `json:"-"`
}

// Fail builds a Problem.
func Fail(code ProblemCode, message, action string, cause error) *Problem {
	return &Problem{Code: code, Message: message, Action: action, Cause: cause}
}

func (p *Problem) Error() string {
	if p.Cause != nil {
		return p.Message + ": " + p.Cause.Error()
	}
	return p.Message
}

func (p *Problem) Unwrap() error { return p.Cause }

// AsProblem returns err's Problem, or an internal Problem that shows err's text.
func AsProblem(err error) *Problem {
	if err == nil {
		return nil
	}
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return &Problem{
		Code:    ProblemInternal,
		Message: err.Error(),
		Action:  "If this keeps happening, restart pow.do and send its log to your employer.",
		Cause:   err,
	}
}
