// Package hookstest runs a Go hook handler in a unit test, without a server: give it the event,
// the document, the previous document, the query and the caller, and read back what the hook did
// (the document after it, validation errors, a cancel, hidden and protected fields, emits,
// response changes, log lines). The handler runs through the SDK's own Invoke, so Cancel, panics,
// returned errors and Protect behave exactly as in a sidecar.
//
//	func TestTitleRequired(t *testing.T) {
//		res := hookstest.Run(validate, hookstest.Input{Event: "validate", Data: map[string]interface{}{"title": ""}})
//		if res.Errors["title"] != "is required" {
//			t.Fatalf("errors = %v", res.Errors)
//		}
//	}
//
// ctx.Dpd calls go to Input.Dpd, a function the test provides; without one they fail with 500.
package hookstest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/deployd-ts/deployd-ts/hooks-go/hooks"
	hooksv1 "github.com/deployd-ts/deployd-ts/hooks-go/proto/hooksv1"
)

// Input is one hook invocation.
type Input struct {
	// Event is the hook's event as hooks.Register names it: "validate", "post", "put", "get",
	// "delete", "aftercommit", "beforerequest" or "login". Default "validate".
	Event string
	// RequestEvent is BeforeRequest's request event (GET, POST, PUT, DELETE, QUERY, LOGIN, LOGOUT).
	RequestEvent string
	// Method is the HTTP method; default from Event (POST for validate/post, PUT, GET, DELETE).
	Method     string
	Collection string
	Data       map[string]interface{}
	// Previous is the stored document before the write (PUT, AfterCommit).
	Previous map[string]interface{}
	Query    map[string]interface{}
	// Me is the logged-in user (nil: anonymous); IsRoot a request with the master key.
	Me       map[string]interface{}
	IsRoot   bool
	Internal bool
	// Success is a Login hook's "the password matched".
	Success bool
	// URL is the request's path after the resource's ("/", "/<id>", an Event resource's
	// "/top-score"); Body the request body as sent. Default "/" and {}.
	URL  string
	Body map[string]interface{}
	// Dpd answers ctx.Dpd(collection) calls: return the result (a document, a list, {"count":1})
	// or an error (a *hooks.DpdError keeps its status).
	Dpd func(call DpdCall) (interface{}, error)
}

// DpdCall is one ctx.Dpd(…) call the hook made.
type DpdCall struct {
	Collection string
	Method     string // GET POST PUT DELETE
	ID         string
	Query      map[string]interface{}
	Body       map[string]interface{}
}

// Cancel is how the hook stopped the request.
type Cancel struct {
	Message string
	Status  int
	// IsError: a failure (returned error, panic) rather than a deliberate ctx.Cancel.
	IsError bool
}

// Emit is one real-time event the hook emitted.
type Emit struct {
	Event           string
	Data            interface{}
	Room            string
	UsersCollection string
	UsersQuery      map[string]interface{}
}

// Response is what an AfterCommit hook changed in the HTTP response.
type Response struct {
	ReplaceData bool
	Data        interface{}
	AddFields   map[string]interface{}
	Messages    []string
	Status      int
}

// Log is one ctx.Log line.
type Log struct {
	Level, Message string
	Fields         map[string]interface{}
}

// Result is what the hook did.
type Result struct {
	Data      map[string]interface{}
	Query     map[string]interface{}
	Errors    map[string]string
	Cancel    *Cancel
	Hidden    []string
	Protected []string
	Emits     []Emit
	Response  *Response
	Logs      []Log
	// DpdCalls lists the hook's ctx.Dpd calls, in order.
	DpdCalls []DpdCall
	// Raw is the protocol result the server would receive.
	Raw *hooksv1.HookResult
}

var events = map[string]hooksv1.Event{
	"beforerequest": hooksv1.Event_EVENT_BEFORE_REQUEST, "validate": hooksv1.Event_EVENT_VALIDATE,
	"post": hooksv1.Event_EVENT_POST, "put": hooksv1.Event_EVENT_PUT, "get": hooksv1.Event_EVENT_GET,
	"delete": hooksv1.Event_EVENT_DELETE, "aftercommit": hooksv1.Event_EVENT_AFTER_COMMIT, "login": hooksv1.Event_EVENT_LOGIN,
}

var methods = map[string]string{"validate": "POST", "post": "POST", "put": "PUT", "get": "GET", "delete": "DELETE", "login": "POST"}

// Run calls h once with in and returns what it did. An unknown Event or an input that is not
// JSON panics: those are mistakes in the test.
func Run(h hooks.Handler, in Input) Result {
	if in.Event == "" {
		in.Event = "validate"
	}
	event, ok := events[in.Event]
	if !ok {
		panic(fmt.Sprintf("hookstest: unknown event %q", in.Event))
	}
	if in.Method == "" {
		in.Method = methods[in.Event]
	}
	if in.Collection == "" {
		in.Collection = "test"
	}
	pc := &hooksv1.EventContext{
		Collection: in.Collection, Event: event, Method: in.Method, RequestEvent: in.RequestEvent,
		DataJson: encode(in.Data), QueryJson: encode(in.Query), Internal: in.Internal, Success: in.Success,
		Caller: &hooksv1.Caller{IsRoot: in.IsRoot}, RequestId: "hookstest", InvocationId: 1,
		Url: in.URL, BodyJson: encode(in.Body),
	}
	if in.Previous != nil {
		pc.PreviousJson = encode(in.Previous)
	}
	if in.Me != nil {
		pc.Caller.MeJson = encode(in.Me)
	}
	c, err := hooks.NewEventContext(pc)
	if err != nil {
		panic("hookstest: " + err.Error())
	}
	host := &fakeHost{answer: in.Dpd}
	raw := hooks.Invoke(h, c.WithHost(host, 1))
	return decodeResult(raw, host.calls)
}

func encode(v map[string]interface{}) []byte {
	if v == nil {
		return []byte("{}")
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("hookstest: input is not JSON: " + err.Error())
	}
	return b
}

type fakeHost struct {
	answer func(DpdCall) (interface{}, error)
	calls  []DpdCall
}

func (f *fakeHost) Dpd(_ context.Context, req *hooksv1.DpdRequest) (*hooksv1.DpdResponse, error) {
	call := DpdCall{Collection: req.GetCollection(), Method: req.GetMethod(), ID: req.GetId()}
	_ = json.Unmarshal(req.GetQueryJson(), &call.Query)
	_ = json.Unmarshal(req.GetBodyJson(), &call.Body)
	f.calls = append(f.calls, call)
	if f.answer == nil {
		return errorResponse(&hooks.DpdError{Status: 500, Message: "hookstest: no Input.Dpd to answer dpd calls"}), nil
	}
	result, err := f.answer(call)
	if err != nil {
		de, ok := err.(*hooks.DpdError)
		if !ok {
			de = &hooks.DpdError{Status: 500, Message: err.Error()}
		}
		return errorResponse(de), nil
	}
	b, err := json.Marshal(result)
	if err != nil {
		return errorResponse(&hooks.DpdError{Status: 500, Message: "hookstest: Input.Dpd's result is not JSON: " + err.Error()}), nil
	}
	return &hooksv1.DpdResponse{ResultJson: b}, nil
}

func errorResponse(e *hooks.DpdError) *hooksv1.DpdResponse {
	b, _ := json.Marshal(e)
	return &hooksv1.DpdResponse{ErrorJson: b}
}

func decodeResult(raw *hooksv1.HookResult, calls []DpdCall) Result {
	res := Result{Raw: raw, Errors: map[string]string{}, Hidden: raw.GetHidden(), Protected: raw.GetProtected(), DpdCalls: calls}
	_ = json.Unmarshal(raw.GetDataJson(), &res.Data)
	_ = json.Unmarshal(raw.GetQueryJson(), &res.Query)
	for k, v := range raw.GetErrors() {
		res.Errors[k] = v
	}
	if c := raw.GetCancel(); c != nil {
		res.Cancel = &Cancel{Message: c.GetMessage(), Status: int(c.GetStatus()), IsError: c.GetIsError()}
	}
	for _, e := range raw.GetEmits() {
		emit := Emit{Event: e.GetEvent(), Room: e.GetRoom(), UsersCollection: e.GetUsersCollection()}
		_ = json.Unmarshal(e.GetDataJson(), &emit.Data)
		if len(e.GetUsersQueryJson()) > 0 {
			_ = json.Unmarshal(e.GetUsersQueryJson(), &emit.UsersQuery)
		}
		res.Emits = append(res.Emits, emit)
	}
	if r := raw.GetResponse(); r != nil {
		res.Response = &Response{ReplaceData: r.GetReplaceData(), Messages: r.GetMessages(), Status: int(r.GetStatus())}
		if len(r.GetDataJson()) > 0 {
			_ = json.Unmarshal(r.GetDataJson(), &res.Response.Data)
		}
		if len(r.GetAddFieldsJson()) > 0 {
			_ = json.Unmarshal(r.GetAddFieldsJson(), &res.Response.AddFields)
		}
	}
	for _, l := range raw.GetLogs() {
		line := Log{Level: l.GetLevel(), Message: l.GetMessage()}
		if len(l.GetFieldsJson()) > 0 {
			_ = json.Unmarshal(l.GetFieldsJson(), &line.Fields)
		}
		res.Logs = append(res.Logs, line)
	}
	return res
}
