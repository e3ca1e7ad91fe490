package hooks

import (
	"encoding/json"
	"fmt"
	"reflect"
	"unicode/utf8"
)

// Limits shared with the JavaScript hook runtime.
const (
	maxLogs       = 100
	maxLogMessage = 4000
	maxEmits      = 1000
)

// EventContext is what a handler reads and changes: one per hook invocation. It is not safe for
// use by several goroutines at once, and must not be used after the handler returns.
type EventContext struct {
	// Data is the document (`this` in a JavaScript hook). Changes to it, or a new map assigned to
	// it, are sent back as the document after the hook. Protected fields keep their previous value
	// (see Protect: assigning one in this map fails the hook).
	Data map[string]interface{}
	// Previous is the stored document before this write (PUT, AfterCommit). It is an empty map
	// when there is none, except in AfterCommit where it is nil when there was no previous document.
	Previous map[string]interface{}
	// Query is the request's query, undeclared keys included. BeforeRequest may change it: the
	// query after the hook is sent back.
	Query map[string]interface{}
	// Me is the logged-in user without secrets, nil when the request is anonymous.
	Me map[string]interface{}
	// IsRoot is true for requests made with the root key (the dashboard, scripts).
	IsRoot bool
	// Internal is true when the request comes from another hook through the internal `dpd` client.
	Internal bool
	// Method is the HTTP method of the request: GET, POST, PUT or DELETE.
	Method string
	// Event is the hook's event name as Register spells it ("validate", "post", …), except in
	// BeforeRequest where, as in go-deployd and the JavaScript `context.event`, it is the request
	// event: GET, POST, PUT, DELETE, QUERY, LOGIN or LOGOUT.
	Event string
	// Collection is the collection's name, such as "todos" or "shop/orders".
	Collection string
	// Success is true in a Login hook when the password matched.
	Success bool
	// RequestID identifies the HTTP request, for logs.
	RequestID string
	// URL is the request's path after the resource's (Deployd's ctx.url): "/" for the collection
	// itself, "/<id>", or an Event resource's sub-path such as "/top-score".
	URL string
	// Parts are URL's segments: "/a/b" gives ["a", "b"] (an Event resource's `parts`).
	Parts []string
	// Body is the request body as the client sent it (Deployd's ctx.body), never a password.
	Body map[string]interface{}

	hook      string // the registered event name
	errors    map[string]string
	hidden    []string
	protected []string
	emits     []emitRecord
	response  *responseRecord
	logs      []logRecord
	cancel    *cancelRecord
	// The Data map Protect last restored fields in (see protectedWrite).
	protectedIn map[string]interface{}
	rooms       *roomsRecord
}

type roomsRecord struct {
	join, leave []string
	leaveAll    bool
}

type emitRecord struct {
	event, room     string
	data            json.RawMessage
	usersCollection string
	usersQuery      json.RawMessage
}

type responseRecord struct {
	replaceData bool
	data        json.RawMessage
	addFields   map[string]json.RawMessage
	messages    []string
	status      int
}

type logRecord struct {
	level, message string
	fields         json.RawMessage
}

type cancelRecord struct {
	message string
	status  int
	isError bool
}

// cancelSignal is the value Cancel panics with; Run recovers it.
type cancelSignal struct{ cancelRecord }

// IsCancel reports whether v, a value returned by recover(), is the signal of EventContext.Cancel
// (or of another function that stops the hook). A handler that recovers panics itself must
// re-panic such values, or the cancel is lost.
func IsCancel(v interface{}) bool {
	_, ok := v.(*cancelSignal)
	return ok
}

func stop(message string, status int, isError bool) {
	panic(&cancelSignal{cancelRecord{message: message, status: status, isError: isError}})
}

// Cancel stops the hook and the request with an error response {"message": msg, "status":
// status}; status 0 means 400. It is a deliberate cancel (is_error false): in a GET list it drops
// the item instead of failing the request.
//
// Cancel does not return: it panics with a private signal that Run recovers, like `cancel()`
// throws in a JavaScript hook. Deferred functions still run. Call it only from the handler's own
// goroutine, and do not swallow it with recover (see IsCancel).
func (c *EventContext) Cancel(msg string, status int) {
	if status == 0 {
		status = 400
	}
	stop(msg, status, false)
}

// Error records a validation error on field; the request then fails with 400 {"errors": {field:
// msg}} once the hook finishes. An empty msg means "is invalid". A later Error on the same field
// replaces the message.
func (c *EventContext) Error(field, msg string) {
	if msg == "" {
		msg = "is invalid"
	}
	if c.errors == nil {
		c.errors = map[string]string{}
	}
	c.errors[field] = msg
}

// HasErrors reports whether Error has been called.
func (c *EventContext) HasErrors() bool { return len(c.errors) > 0 }

// IsMe reports whether id is the logged-in user's id (Deployd's isMe): false when anonymous.
func (c *EventContext) IsMe(id string) bool {
	if c.Me == nil {
		return false
	}
	me, ok := c.Me["id"].(string)
	return ok && me != "" && me == id
}

// Hide removes field from the response sent to the client; the document keeps it. A field the
// document does not have is reported hidden too, so that the server treats a query on it alike
// whether or not a document has it.
func (c *EventContext) Hide(field string) {
	if contains(c.hidden, field) {
		return
	}
	c.hidden = append(c.hidden, field)
}

// Protect keeps field from being changed by this request: it gets its previous value back right
// away and in the result (it is removed when the previous document has no such field). A field the
// document does not have is ignored. As in JavaScript, where the property becomes read-only,
// assigning the field in the same Data map afterwards fails the hook with 400 "Cannot modify
// protected property"; a new map assigned to Data gets the previous values back silently.
func (c *EventContext) Protect(field string) {
	if _, ok := c.Data[field]; !ok {
		return
	}
	if !contains(c.protected, field) {
		c.protected = append(c.protected, field)
	}
	c.restoreProtected()
	c.protectedIn = c.Data
}

// protectedWrite names a protected field the handler assigned in the map Protect restored it in.
func (c *EventContext) protectedWrite() string {
	if c.protectedIn == nil || c.Data == nil || reflect.ValueOf(c.Data).Pointer() != reflect.ValueOf(c.protectedIn).Pointer() {
		return ""
	}
	for _, field := range c.protected {
		now, has := c.Data[field]
		prev, had := c.Previous[field]
		if has != had || (has && !sameValue(now, prev)) {
			return field
		}
	}
	return ""
}

// sameValue: a protected field still holds what Protect put there (a copy of the previous value:
// equal scalars, or maps and slices that are equal in content).
func sameValue(a, b interface{}) bool { return reflect.DeepEqual(a, b) }

// restoreProtected puts the previous values of the protected fields back into Data.
func (c *EventContext) restoreProtected() {
	if len(c.protected) == 0 {
		return
	}
	if c.Data == nil {
		c.Data = map[string]interface{}{}
	}
	for _, field := range c.protected {
		if prev, ok := c.Previous[field]; ok {
			c.Data[field] = deepCopy(prev)
		} else {
			delete(c.Data, field)
		}
	}
}

// Emit sends a real-time event with data (any JSON-encodable value, nil for null) to every
// connected client, or, with rooms, to the clients in each given room. Data that cannot be
// encoded as JSON, or more than 1000 emits in one invocation, fail the hook.
func (c *EventContext) Emit(event string, data interface{}, room ...string) {
	raw := mustJSON("emit data", data)
	if len(room) == 0 {
		c.addEmit(emitRecord{event: event, data: raw})
		return
	}
	for _, r := range room {
		c.addEmit(emitRecord{event: event, data: raw, room: r})
	}
}

// JoinRoom adds the caller's login session to each room (JavaScript's session.joinRoom /
// joinRooms): every WebSocket connection of that session then gets the events emitted to it, and a
// reconnect with the session rejoins. Without a login session it does nothing. Empty names and
// names over 200 characters are ignored; at most 100 names per call.
func (c *EventContext) JoinRoom(rooms ...string) {
	r := c.sessionRooms()
	for _, name := range roomNames(rooms) {
		if !contains(r.join, name) {
			r.join = append(r.join, name)
		}
		r.leave = without(r.leave, name)
	}
}

// LeaveRoom takes the caller's login session out of each room (session.leaveRoom / leaveRooms).
func (c *EventContext) LeaveRoom(rooms ...string) {
	r := c.sessionRooms()
	for _, name := range roomNames(rooms) {
		if !contains(r.leave, name) {
			r.leave = append(r.leave, name)
		}
		r.join = without(r.join, name)
	}
}

// LeaveAllRooms takes the caller's login session out of every room it joined
// (session.leaveAllRooms); a later JoinRoom in the same hook still applies.
func (c *EventContext) LeaveAllRooms() {
	r := c.sessionRooms()
	r.leaveAll, r.join, r.leave = true, nil, nil
}

func (c *EventContext) sessionRooms() *roomsRecord {
	if c.rooms == nil {
		c.rooms = &roomsRecord{}
	}
	return c.rooms
}

func roomNames(names []string) []string {
	out := []string{}
	for _, n := range names {
		if n != "" && utf8.RuneCountInString(n) <= 200 {
			out = append(out, n)
		}
		if len(out) == 100 {
			break
		}
	}
	return out
}

func without(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// EmitToUsers sends a real-time event only to the logged-in users of usersCollection that match
// query (nil: all of them), like `emit(dpd.users, query, event, data)` in JavaScript.
func (c *EventContext) EmitToUsers(usersCollection string, query map[string]interface{}, event string, data interface{}) {
	if query == nil {
		query = map[string]interface{}{}
	}
	c.addEmit(emitRecord{event: event, data: mustJSON("emit data", data), usersCollection: usersCollection, usersQuery: mustJSON("emit query", query)})
}

func (c *EventContext) addEmit(e emitRecord) {
	if len(c.emits) >= maxEmits {
		stop("too many emits in one event", 500, true)
	}
	c.emits = append(c.emits, e)
}

// Log writes an info line to the server log, attributed to this hook, with optional structured
// fields (several maps are merged, later keys winning). Messages are cut at 4000 characters;
// lines after the 100th of an invocation are dropped.
func (c *EventContext) Log(msg string, fields ...map[string]interface{}) {
	c.log("info", msg, fields...)
}

func (c *EventContext) log(level, msg string, fields ...map[string]interface{}) {
	if len(c.logs) >= maxLogs {
		return
	}
	line := logRecord{level: level, message: truncate(msg, maxLogMessage)}
	if len(fields) > 0 {
		merged := map[string]interface{}{}
		for _, f := range fields {
			for k, v := range f {
				merged[k] = v
			}
		}
		raw, err := json.Marshal(merged)
		if err != nil {
			raw, _ = json.Marshal(map[string]string{"value": fmt.Sprint(merged)})
		}
		line.fields = raw
	}
	c.logs = append(c.logs, line)
}

func (c *EventContext) resp() *responseRecord {
	if c.response == nil {
		c.response = &responseRecord{addFields: map[string]json.RawMessage{}}
	}
	return c.response
}

// SetResponseData replaces the body of the HTTP response with v (AfterCommit). A value that
// cannot be encoded as JSON fails the hook.
func (c *EventContext) SetResponseData(v interface{}) {
	raw := mustJSON("response data", v)
	r := c.resp()
	r.replaceData = true
	r.data = raw
}

// SetResult sets the answer of an Event resource (Deployd's dpd-event setResult): any value that
// encodes as JSON. Without it the answer is Data.
func (c *EventContext) SetResult(v interface{}) { c.SetResponseData(v) }

// AddResponseField adds key: v to the response body object (AfterCommit). A value that cannot be
// encoded as JSON fails the hook.
func (c *EventContext) AddResponseField(key string, v interface{}) {
	raw := mustJSON("response field", v)
	c.resp().addFields[key] = raw
}

// AddResponseMessage appends msg to the response's "messages" array (AfterCommit).
func (c *EventContext) AddResponseMessage(msg string) {
	r := c.resp()
	r.messages = append(r.messages, msg)
}

// SetResponseStatus sets the HTTP status of the response (AfterCommit). A code outside 100–599
// fails the hook with status 500.
func (c *EventContext) SetResponseStatus(code int) {
	if code < 100 || code > 599 {
		stop(fmt.Sprintf("setResponseStatus needs an HTTP status, got %d", code), 500, true)
	}
	c.resp().status = code
}

// mustJSON encodes v, failing the hook (a panic Run turns into a 500 error) when it cannot.
func mustJSON(what string, v interface{}) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Errorf("%s is not JSON: %w", what, err))
	}
	return raw
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// truncate cuts s to at most n characters (runes), never inside a UTF-8 sequence.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// deepCopy copies the maps and slices of a decoded JSON value, so a protected field's value is not
// shared with Previous.
func deepCopy(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case []interface{}:
		s := make([]interface{}, len(t))
		for i, x := range t {
			s[i] = deepCopy(x)
		}
		return s
	default:
		return v
	}
}
