package hooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"

	hooksv1 "github.com/deployd-ts/deployd-ts/hooks-go/proto/hooksv1"
)

// Handler is the function Register binds to an event. A non-nil error fails the hook like a
// thrown Error in JavaScript: is_error true, status 500, the error's text as message (the server
// puts the hook's file in front). Only EventContext.Cancel answers with a 4xx.
type Handler func(*EventContext) error

// eventNames maps the protocol's events to the names Register accepts (the hook file names of the
// JavaScript runner: src/hooks/protocol.ts HOOK_EVENTS).
var eventNames = map[hooksv1.Event]string{
	hooksv1.Event_EVENT_BEFORE_REQUEST: "beforerequest",
	hooksv1.Event_EVENT_VALIDATE:       "validate",
	hooksv1.Event_EVENT_POST:           "post",
	hooksv1.Event_EVENT_PUT:            "put",
	hooksv1.Event_EVENT_GET:            "get",
	hooksv1.Event_EVENT_DELETE:         "delete",
	hooksv1.Event_EVENT_AFTER_COMMIT:   "aftercommit",
	hooksv1.Event_EVENT_LOGIN:          "login",
}

// EventName returns the name Register uses for a protocol event ("post" for EVENT_POST), or ""
// for EVENT_UNSPECIFIED and unknown values.
func EventName(e hooksv1.Event) string { return eventNames[e] }

// NewEventContext decodes a protocol EventContext into the handler's view of it. Absent JSON
// fields become empty maps (Previous stays nil in AfterCommit, Me when anonymous); a JSON field
// that is not an object is an error.
func NewEventContext(in *hooksv1.EventContext) (*EventContext, error) {
	hook := EventName(in.GetEvent())
	c := &EventContext{
		IsRoot:     in.GetCaller().GetIsRoot(),
		Internal:   in.GetInternal(),
		Method:     in.GetMethod(),
		Event:      hook,
		Collection: in.GetCollection(),
		Success:    in.GetSuccess(),
		RequestID:  in.GetRequestId(),
		URL:        in.GetUrl(),
		Parts:      []string{},
		hook:       hook,
		invocation: in.GetInvocationId(),
	}
	if c.URL == "" {
		c.URL = "/"
	}
	for _, part := range strings.Split(c.URL, "/") {
		if part != "" {
			c.Parts = append(c.Parts, part)
		}
	}
	if in.GetEvent() == hooksv1.Event_EVENT_BEFORE_REQUEST {
		c.Event = in.GetRequestEvent()
	}
	var err error
	if c.Data, err = decodeObject("data_json", in.GetDataJson()); err != nil {
		return nil, err
	}
	if c.Previous, err = decodeObject("previous_json", in.GetPreviousJson()); err != nil {
		return nil, err
	}
	if c.Previous == nil && hook != "aftercommit" {
		c.Previous = map[string]interface{}{}
	}
	if c.Query, err = decodeObject("query_json", in.GetQueryJson()); err != nil {
		return nil, err
	}
	if c.Me, err = decodeObject("caller.me_json", in.GetCaller().GetMeJson()); err != nil {
		return nil, err
	}
	if c.Body, err = decodeObject("body_json", in.GetBodyJson()); err != nil {
		return nil, err
	}
	if c.Body == nil {
		c.Body = map[string]interface{}{}
	}
	if c.Data == nil {
		c.Data = map[string]interface{}{}
	}
	if c.Query == nil {
		c.Query = map[string]interface{}{}
	}
	// Deployd: a PUT protects id before Validate and Put, so changing it fails the hook there.
	if c.Method == "PUT" && (hook == "validate" || hook == "put") {
		c.Protect("id")
	}
	return c, nil
}

// decodeObject decodes a JSON object; empty text and null give nil.
func decodeObject(field string, raw []byte) (map[string]interface{}, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var m map[string]interface{}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object: %w", field, err)
	}
	return m, nil
}

// Invoke calls h with c and returns what the hook produced. It never panics: Cancel, a returned
// error and a panic all end up in HookResult.cancel.
func Invoke(h Handler, c *EventContext) *hooksv1.HookResult {
	c.cancel = call(h, c)
	if field := c.protectedWrite(); field != "" && c.cancel == nil {
		c.cancel = &cancelRecord{message: fmt.Sprintf("Cannot modify protected property '%s'", field), status: 400, isError: true}
	}
	return c.Result()
}

// call runs the handler and turns a stop into a cancel record (nil: the hook finished).
func call(h Handler, c *EventContext) (out *cancelRecord) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if sig, ok := r.(*cancelSignal); ok {
			rec := sig.cancelRecord
			out = &rec
			return
		}
		msg := fmt.Sprint(r)
		if err, ok := r.(error); ok {
			msg = err.Error()
		}
		// The failure itself is logged once by the server; the stack is there for debugging.
		c.log("debug", fmt.Sprintf("panic: %s\n%s", msg, debug.Stack()))
		if place := panicPlace(); place != "" {
			msg = place + ": panic: " + msg
		}
		out = &cancelRecord{message: msg, status: 500, isError: true}
	}()
	if err := h(c); err != nil {
		return &cancelRecord{message: err.Error(), status: 500, isError: true}
	}
	return nil
}

// hookFile matches the generated package file that holds a user's hook (build.ts copies each
// hook file to hook_<event>/<event>.go, line for line); the server maps it back to the user's file.
var hookFile = regexp.MustCompile(`hook_[a-z]+/[a-z]+\.go$`)

// panicPlace is `hook_post/post.go:12`, the innermost frame of the panicking goroutine in a hook
// file ("" when the panic did not pass through one). Called from the deferred recover.
func panicPlace() string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if loc := hookFile.FindString(f.File); loc != "" {
			return fmt.Sprintf("%s:%d", loc, f.Line)
		}
		if !more {
			return ""
		}
	}
}

// Result encodes what the handler did so far as a protocol HookResult: the document (protected
// fields restored), the query, errors, hidden and protected fields, emits, the response mutation,
// log lines and the cancel, if any. A document or query that cannot be encoded as JSON gives a
// result with only a 500 error cancel, as in the JavaScript runtime.
func (c *EventContext) Result() *hooksv1.HookResult {
	c.restoreProtected()
	data := c.Data
	if data == nil {
		data = map[string]interface{}{}
	}
	query := c.Query
	if query == nil {
		query = map[string]interface{}{}
	}
	dataJSON, err := json.Marshal(data)
	if err != nil {
		return failure(fmt.Sprintf("hook result is not JSON: %v", err))
	}
	queryJSON, err := json.Marshal(query)
	if err != nil {
		return failure(fmt.Sprintf("hook result is not JSON: %v", err))
	}
	res := &hooksv1.HookResult{
		DataJson:  dataJSON,
		QueryJson: queryJSON,
		Errors:    map[string]string{},
		Hidden:    append([]string{}, c.hidden...),
		Protected: append([]string{}, c.protected...),
	}
	for k, v := range c.errors {
		res.Errors[k] = v
	}
	for _, e := range c.emits {
		res.Emits = append(res.Emits, &hooksv1.Emit{
			Event: e.event, DataJson: e.data, Room: e.room, UsersCollection: e.usersCollection, UsersQueryJson: e.usersQuery,
		})
	}
	if r := c.response; r != nil {
		addFields, _ := json.Marshal(r.addFields) // RawMessages that were valid JSON already
		res.Response = &hooksv1.ResponseMutation{
			ReplaceData: r.replaceData, DataJson: r.data, AddFieldsJson: addFields,
			Messages: append([]string{}, r.messages...), Status: int32(r.status),
		}
	}
	for _, l := range c.logs {
		res.Logs = append(res.Logs, &hooksv1.LogLine{Level: l.level, Message: l.message, FieldsJson: l.fields})
	}
	if r := c.rooms; r != nil {
		res.SessionRooms = &hooksv1.SessionRooms{Join: append([]string{}, r.join...), Leave: append([]string{}, r.leave...), LeaveAll: r.leaveAll}
	}
	if c.cancel != nil {
		res.Cancel = &hooksv1.Cancel{Message: c.cancel.message, Status: int32(c.cancel.status), IsError: c.cancel.isError}
	}
	return res
}

// failure is a result that only reports a failed hook.
func failure(msg string) *hooksv1.HookResult {
	return &hooksv1.HookResult{
		DataJson: []byte("{}"),
		Errors:   map[string]string{},
		Cancel:   &hooksv1.Cancel{Message: msg, Status: 500, IsError: true},
	}
}
