package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	hooksv1 "github.com/deployd-ts/deployd-ts/hooks-go/proto/hooksv1"
)

// run registers h for event in a fresh Registry and runs it on in (event set from the argument).
func run(t *testing.T, event string, in *hooksv1.EventContext, h Handler) *hooksv1.HookResult {
	t.Helper()
	r := NewRegistry()
	r.Register(event, h)
	if in == nil {
		in = &hooksv1.EventContext{}
	}
	for e, name := range eventNames {
		if name == event {
			in.Event = e
		}
	}
	res, err := r.Run(context.Background(), in)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func decode(t *testing.T, raw []byte) interface{} {
	t.Helper()
	if len(raw) == 0 {
		return nil
	}
	var v interface{}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("bad JSON %q: %v", raw, err)
	}
	return v
}

func obj(kv ...interface{}) map[string]interface{} {
	m := map[string]interface{}{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func eq(t *testing.T, what string, got, want interface{}) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestContextFromProto(t *testing.T) {
	in := &hooksv1.EventContext{
		Collection: "shop/orders", Event: hooksv1.Event_EVENT_PUT, Method: "PUT",
		DataJson: []byte(`{"n":1.5,"tags":["a"],"nested":{"x":null}}`), PreviousJson: []byte(`{"n":1}`),
		QueryJson: []byte(`{"id":"abc"}`), Caller: &hooksv1.Caller{IsRoot: true, MeJson: []byte(`{"id":"u1"}`)},
		Internal: true, RequestId: "r-1", Success: true,
	}
	c, err := NewEventContext(in)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "Data", c.Data, obj("n", 1.5, "tags", []interface{}{"a"}, "nested", obj("x", nil)))
	eq(t, "Previous", c.Previous, obj("n", 1.0))
	eq(t, "Query", c.Query, obj("id", "abc"))
	eq(t, "Me", c.Me, obj("id", "u1"))
	eq(t, "flags", []interface{}{c.IsRoot, c.Internal, c.Success}, []interface{}{true, true, true})
	eq(t, "strings", []string{c.Method, c.Event, c.Collection, c.RequestID}, []string{"PUT", "put", "shop/orders", "r-1"})
	eq(t, "IsMe", []bool{c.IsMe("u1"), c.IsMe("u2"), c.IsMe("")}, []bool{true, false, false})
}

func TestContextDefaults(t *testing.T) {
	c, err := NewEventContext(&hooksv1.EventContext{Event: hooksv1.Event_EVENT_POST})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "Data", c.Data, map[string]interface{}{})
	eq(t, "Query", c.Query, map[string]interface{}{})
	eq(t, "Previous", c.Previous, map[string]interface{}{})
	if c.Me != nil || c.IsRoot || c.IsMe("") {
		t.Errorf("anonymous caller: Me=%v IsRoot=%v IsMe(\"\")=%v", c.Me, c.IsRoot, c.IsMe(""))
	}
	// AfterCommit without a previous document: nil, as `previous` is undefined in JavaScript.
	c, _ = NewEventContext(&hooksv1.EventContext{Event: hooksv1.Event_EVENT_AFTER_COMMIT})
	if c.Previous != nil {
		t.Errorf("aftercommit Previous = %v, want nil", c.Previous)
	}
	// BeforeRequest: Event is the request event.
	c, _ = NewEventContext(&hooksv1.EventContext{Event: hooksv1.Event_EVENT_BEFORE_REQUEST, RequestEvent: "QUERY"})
	eq(t, "Event", c.Event, "QUERY")
	if _, err := NewEventContext(&hooksv1.EventContext{DataJson: []byte(`[1]`)}); err == nil {
		t.Error("data_json that is not an object: no error")
	}
}

func TestPlainRunKeepsDataAndQuery(t *testing.T) {
	res := run(t, "post", &hooksv1.EventContext{DataJson: []byte(`{"title":"a"}`), QueryJson: []byte(`{"q":1}`)}, func(c *EventContext) error {
		c.Data["done"] = false
		c.Query["$limit"] = 5
		return nil
	})
	if res.Cancel != nil {
		t.Fatalf("cancel: %v", res.Cancel)
	}
	eq(t, "data", decode(t, res.DataJson), obj("title", "a", "done", false))
	eq(t, "query", decode(t, res.QueryJson), obj("q", 1.0, "$limit", 5.0))
	eq(t, "errors", len(res.Errors), 0)
	if res.Response != nil || len(res.Emits) != 0 || len(res.Logs) != 0 || len(res.Hidden) != 0 || len(res.Protected) != 0 {
		t.Errorf("unexpected output: %v", res)
	}
}

func TestReplacingDataIsKept(t *testing.T) {
	res := run(t, "put", &hooksv1.EventContext{DataJson: []byte(`{"a":1}`)}, func(c *EventContext) error {
		c.Data = map[string]interface{}{"b": 2}
		return nil
	})
	eq(t, "data", decode(t, res.DataJson), obj("b", 2.0))
	res = run(t, "put", nil, func(c *EventContext) error { c.Data = nil; return nil })
	eq(t, "nil data", string(res.DataJson), "{}")
}

func TestCancel(t *testing.T) {
	after := false
	deferred := false
	res := run(t, "post", &hooksv1.EventContext{DataJson: []byte(`{"a":1}`)}, func(c *EventContext) error {
		defer func() { deferred = true }()
		c.Data["a"] = 2
		c.Cancel("nope", 403)
		after = true
		return nil
	})
	if after || !deferred {
		t.Errorf("Cancel returned (%v) or skipped defers (%v)", after, deferred)
	}
	eq(t, "cancel", res.Cancel, &hooksv1.Cancel{Message: "nope", Status: 403, IsError: false})
	eq(t, "data", decode(t, res.DataJson), obj("a", 2.0))

	res = run(t, "post", nil, func(c *EventContext) error { c.Cancel("default", 0); return nil })
	eq(t, "default status", res.Cancel, &hooksv1.Cancel{Message: "default", Status: 400})
}

type statusErr struct{}

func (statusErr) Error() string   { return "teapot" }
func (statusErr) StatusCode() int { return 418 }

// Only Cancel answers with a 4xx: a returned error is a failure (500), whatever it carries.
func TestReturnedError(t *testing.T) {
	res := run(t, "validate", nil, func(c *EventContext) error { return errors.New("bad thing") })
	eq(t, "cancel", res.Cancel, &hooksv1.Cancel{Message: "bad thing", Status: 500, IsError: true})
	res = run(t, "validate", nil, func(c *EventContext) error { return statusErr{} })
	eq(t, "status error", res.Cancel, &hooksv1.Cancel{Message: "teapot", Status: 500, IsError: true})
}

func TestPanicBecomesError(t *testing.T) {
	res := run(t, "get", &hooksv1.EventContext{DataJson: []byte(`{"a":1}`)}, func(c *EventContext) error {
		var m map[string]int
		m["x"] = 1 // nil map write
		return nil
	})
	if res.Cancel == nil || !res.Cancel.IsError || res.Cancel.Status != 500 || !strings.Contains(res.Cancel.Message, "assignment to entry in nil map") {
		t.Fatalf("cancel = %v", res.Cancel)
	}
	eq(t, "data", decode(t, res.DataJson), obj("a", 1.0))
	if len(res.Logs) != 1 || res.Logs[0].Level != "debug" || !strings.Contains(res.Logs[0].Message, "panic:") {
		t.Errorf("logs = %v", res.Logs)
	}
	res = run(t, "get", nil, func(c *EventContext) error { panic("boom") })
	eq(t, "panic string", res.Cancel, &hooksv1.Cancel{Message: "boom", Status: 500, IsError: true})
	res = run(t, "get", nil, func(c *EventContext) error { panic(errors.New("err boom")) })
	eq(t, "panic error", res.Cancel.Message, "err boom")
}

func TestErrors(t *testing.T) {
	var before, afterErr bool
	res := run(t, "validate", nil, func(c *EventContext) error {
		before = c.HasErrors()
		c.Error("title", "is required")
		c.Error("title", "is too short") // replaces
		c.Error("body", "")
		afterErr = c.HasErrors()
		return nil
	})
	if before || !afterErr {
		t.Errorf("HasErrors before=%v after=%v", before, afterErr)
	}
	eq(t, "errors", res.Errors, map[string]string{"title": "is too short", "body": "is invalid"})
	if res.Cancel != nil {
		t.Errorf("errors alone must not cancel: %v", res.Cancel)
	}
}

func TestHide(t *testing.T) {
	res := run(t, "get", &hooksv1.EventContext{DataJson: []byte(`{"a":1,"secret":"s"}`)}, func(c *EventContext) error {
		c.Hide("secret")
		c.Hide("secret")
		c.Hide("missing")
		return nil
	})
	eq(t, "hidden", res.Hidden, []string{"secret", "missing"})
	// The document keeps hidden fields; the server leaves them out of the response.
	eq(t, "data", decode(t, res.DataJson), obj("a", 1.0, "secret", "s"))
}

func TestProtect(t *testing.T) {
	in := &hooksv1.EventContext{
		DataJson:     []byte(`{"owner":"mallory","fresh":1,"nested":{"k":"new"},"title":"t"}`),
		PreviousJson: []byte(`{"owner":"alice","nested":{"k":"old"}}`),
	}
	var seen interface{}
	res := run(t, "put", in, func(c *EventContext) error {
		c.Protect("owner")
		seen = c.Data["owner"] // restored right away
		c.Protect("fresh")     // not in previous: removed
		c.Protect("nested")
		c.Data["nested"].(map[string]interface{})["k"] = "mutated" // must not reach Previous
		c.Protect("missing")
		return nil
	})
	eq(t, "value after Protect", seen, "alice")
	eq(t, "protected", res.Protected, []string{"owner", "fresh", "nested"})
	eq(t, "data", decode(t, res.DataJson), obj("owner", "alice", "nested", obj("k", "old"), "title", "t"))
}

func TestProtectedWriteFails(t *testing.T) {
	in := &hooksv1.EventContext{DataJson: []byte(`{"owner":"mallory"}`), PreviousJson: []byte(`{"owner":"alice"}`)}
	res := run(t, "put", in, func(c *EventContext) error {
		c.Protect("owner")
		c.Data["owner"] = "mallory again"
		return nil
	})
	eq(t, "cancel", res.Cancel, &hooksv1.Cancel{Message: "Cannot modify protected property 'owner'", Status: 400, IsError: true})
	// A new map assigned to Data is not a write to the protected field: its value is restored.
	res = run(t, "put", in, func(c *EventContext) error {
		c.Protect("owner")
		c.Data = map[string]interface{}{"owner": "mallory", "slug": "s"}
		return nil
	})
	eq(t, "no cancel", res.Cancel, (*hooksv1.Cancel)(nil))
	eq(t, "data", decode(t, res.DataJson), obj("owner", "alice", "slug", "s"))
}

func TestSessionRooms(t *testing.T) {
	res := run(t, "post", nil, func(c *EventContext) error { return nil })
	eq(t, "none", res.SessionRooms, (*hooksv1.SessionRooms)(nil))
	res = run(t, "post", nil, func(c *EventContext) error {
		c.JoinRoom("a", "b", "", strings.Repeat("x", 201))
		c.LeaveRoom("b", "c")
		c.JoinRoom("c")
		return nil
	})
	eq(t, "rooms", res.SessionRooms, &hooksv1.SessionRooms{Join: []string{"a", "c"}, Leave: []string{"b"}})
	res = run(t, "post", nil, func(c *EventContext) error {
		c.JoinRoom("a")
		c.LeaveAllRooms()
		c.JoinRoom("z")
		return nil
	})
	eq(t, "leave all", res.SessionRooms, &hooksv1.SessionRooms{Join: []string{"z"}, Leave: []string{}, LeaveAll: true})
}

func TestEmit(t *testing.T) {
	res := run(t, "post", nil, func(c *EventContext) error {
		c.Emit("all", map[string]int{"n": 1})
		c.Emit("rooms", "x", "r1", "r2")
		c.Emit("null", nil)
		c.EmitToUsers("users", map[string]interface{}{"admin": true}, "admins", 1)
		return nil
	})
	want := []*hooksv1.Emit{
		{Event: "all", DataJson: []byte(`{"n":1}`)},
		{Event: "rooms", DataJson: []byte(`"x"`), Room: "r1"},
		{Event: "rooms", DataJson: []byte(`"x"`), Room: "r2"},
		{Event: "null", DataJson: []byte(`null`)},
		{Event: "admins", DataJson: []byte(`1`), UsersCollection: "users", UsersQueryJson: []byte(`{"admin":true}`)},
	}
	if len(res.Emits) != len(want) {
		t.Fatalf("emits = %v", res.Emits)
	}
	for i := range want {
		eq(t, "emit", res.Emits[i].String(), want[i].String())
	}
	res = run(t, "post", nil, func(c *EventContext) error { c.Emit("bad", make(chan int)); return nil })
	if res.Cancel == nil || res.Cancel.Status != 500 || !res.Cancel.IsError || !strings.Contains(res.Cancel.Message, "emit data is not JSON") {
		t.Errorf("unencodable emit: %v", res.Cancel)
	}
	res = run(t, "post", nil, func(c *EventContext) error {
		for i := 0; i < 2000; i++ {
			c.Emit("e", i)
		}
		return nil
	})
	eq(t, "too many emits", res.Cancel, &hooksv1.Cancel{Message: "too many emits in one event", Status: 500, IsError: true})
}

func TestResponse(t *testing.T) {
	res := run(t, "aftercommit", nil, func(c *EventContext) error {
		c.SetResponseData([]int{1, 2})
		c.AddResponseField("extra", map[string]bool{"ok": true})
		c.AddResponseMessage("saved")
		c.AddResponseMessage("twice")
		c.SetResponseStatus(201)
		return nil
	})
	r := res.Response
	if r == nil || !r.ReplaceData || r.Status != 201 {
		t.Fatalf("response = %v", r)
	}
	eq(t, "data", decode(t, r.DataJson), []interface{}{1.0, 2.0})
	eq(t, "fields", decode(t, r.AddFieldsJson), obj("extra", obj("ok", true)))
	eq(t, "messages", r.Messages, []string{"saved", "twice"})

	res = run(t, "aftercommit", nil, func(c *EventContext) error { c.AddResponseMessage("only"); return nil })
	if res.Response.ReplaceData || res.Response.Status != 0 || string(res.Response.AddFieldsJson) != "{}" {
		t.Errorf("message only: %v", res.Response)
	}
	res = run(t, "aftercommit", nil, func(c *EventContext) error { c.SetResponseStatus(42); return nil })
	eq(t, "bad status", res.Cancel, &hooksv1.Cancel{Message: "setResponseStatus needs an HTTP status, got 42", Status: 500, IsError: true})
}

func TestLog(t *testing.T) {
	res := run(t, "put", nil, func(c *EventContext) error {
		c.Log("plain")
		c.Log("with fields", map[string]interface{}{"a": 1}, map[string]interface{}{"b": "x", "a": 2})
		c.Log(strings.Repeat("é", 5000))
		for i := 0; i < 200; i++ {
			c.Log("flood")
		}
		return nil
	})
	if len(res.Logs) != 100 {
		t.Fatalf("%d log lines, want 100", len(res.Logs))
	}
	eq(t, "line 0", []string{res.Logs[0].Level, res.Logs[0].Message, string(res.Logs[0].FieldsJson)}, []string{"info", "plain", ""})
	eq(t, "fields", decode(t, res.Logs[1].FieldsJson), obj("a", 2.0, "b", "x"))
	eq(t, "cut", len([]rune(res.Logs[2].Message)), 4000)
}

func TestUnencodableDataFails(t *testing.T) {
	res := run(t, "post", nil, func(c *EventContext) error { c.Data["ch"] = make(chan int); return nil })
	if res.Cancel == nil || res.Cancel.Status != 500 || !strings.HasPrefix(res.Cancel.Message, "hook result is not JSON") {
		t.Errorf("cancel = %v", res.Cancel)
	}
	eq(t, "data", string(res.DataJson), "{}")
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	res, err := r.Run(context.Background(), &hooksv1.EventContext{Event: hooksv1.Event_EVENT_GET, DataJson: []byte(`{"a":1}`), QueryJson: []byte(`{"q":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "no handler: no cancel", res.Cancel, (*hooksv1.Cancel)(nil))
	eq(t, "no handler: data passes through", string(res.DataJson), `{"a":1}`)
	eq(t, "no handler: query passes through", string(res.QueryJson), `{"q":2}`)
	res, _ = r.Run(context.Background(), &hooksv1.EventContext{Event: hooksv1.Event_EVENT_UNSPECIFIED})
	eq(t, "unspecified", res.Cancel.Message, "no EVENT_UNSPECIFIED hook is loaded")
	r.Register("get", func(*EventContext) error { return nil })
	res, _ = r.Run(context.Background(), &hooksv1.EventContext{Event: hooksv1.Event_EVENT_GET, DataJson: []byte(`"x"`)})
	if res.Cancel == nil || !strings.Contains(res.Cancel.Message, "data_json is not a JSON object") {
		t.Errorf("bad data_json: %v", res.Cancel)
	}
	for _, name := range Events {
		found := false
		for _, n := range eventNames {
			found = found || n == name
		}
		if !found {
			t.Errorf("Events has %q, the protocol does not", name)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Register of an unknown event did not panic")
		}
	}()
	r.Register("Post", func(*EventContext) error { return nil })
}

func TestIsCancel(t *testing.T) {
	var v interface{}
	func() {
		defer func() { v = recover() }()
		(&EventContext{}).Cancel("x", 0)
	}()
	if !IsCancel(v) || IsCancel("x") {
		t.Error("IsCancel")
	}
}
