package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	hooksv1 "github.com/deployd-ts/deployd-ts/hooks-go/proto/hooksv1"
)

// Dpd is the internal client of one collection, as `dpd.todos` in a JavaScript hook: every call
// runs that collection exactly as an HTTP request would (its rules and hooks included), as the
// caller of the hook that makes it, flagged Internal. Its events are published once its own write
// commits. The same METHOD /collection may be on a request's stack at most twice (Deployd's
// recursion guard): a deeper call fails with a 400 DpdError.
//
// Calls block until the host answers; use them from the handler's own goroutine.
type Dpd struct {
	c          *EventContext
	collection string
}

// Dpd returns the internal client of collection ("todos", "shop/orders").
func (c *EventContext) Dpd(collection string) *Dpd { return &Dpd{c: c, collection: collection} }

// DpdError is a failed `dpd` call: what an HTTP client would have received.
type DpdError struct {
	Status  int               `json:"status"`
	Message string            `json:"message"`
	Code    string            `json:"code,omitempty"`
	Errors  map[string]string `json:"errors,omitempty"`
}

func (e *DpdError) Error() string {
	if len(e.Errors) > 0 {
		b, _ := json.Marshal(e.Errors)
		return fmt.Sprintf("%s %s", e.Message, b)
	}
	return e.Message
}

// StatusCode is the HTTP status of the failed call: a handler that returns the error fails its own
// request with the same status.
func (e *DpdError) StatusCode() int { return e.Status }

// Get returns the documents matching query (nil: all), as the collection's GET would.
func (d *Dpd) Get(query map[string]interface{}) ([]map[string]interface{}, error) {
	raw, err := d.call("GET", "", query, nil)
	if err != nil {
		return nil, err
	}
	var list []map[string]interface{}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) { // a query naming an id answers one document
		var one map[string]interface{}
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, fmt.Errorf("dpd %s GET: %w", d.collection, err)
		}
		return []map[string]interface{}{one}, nil
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("dpd %s GET: %w", d.collection, err)
	}
	if list == nil {
		list = []map[string]interface{}{}
	}
	return list, nil
}

// GetOne returns the document with id; a missing one is a 404 DpdError.
func (d *Dpd) GetOne(id string) (map[string]interface{}, error) {
	if id == "" {
		return nil, &DpdError{Status: 400, Message: "GetOne needs an id"}
	}
	return d.object("GET", id, nil, nil)
}

// Post creates a document and returns it as stored (after the collection's hooks).
func (d *Dpd) Post(doc map[string]interface{}) (map[string]interface{}, error) {
	return d.object("POST", "", nil, doc)
}

// Put applies changes to the document with id and returns the result.
func (d *Dpd) Put(id string, changes map[string]interface{}) (map[string]interface{}, error) {
	if id == "" {
		return nil, &DpdError{Status: 400, Message: "Put needs an id"}
	}
	return d.object("PUT", id, nil, changes)
}

// Delete removes the document with id and returns the collection's answer ({"count": 1}).
func (d *Dpd) Delete(id string) (map[string]interface{}, error) {
	if id == "" {
		return nil, &DpdError{Status: 400, Message: "Delete needs an id"}
	}
	return d.object("DELETE", id, nil, nil)
}

func (d *Dpd) object(method, id string, query, body map[string]interface{}) (map[string]interface{}, error) {
	raw, err := d.call(method, id, query, body)
	if err != nil {
		return nil, err
	}
	var out map[string]interface{}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("dpd %s %s: %w", d.collection, method, err)
	}
	return out, nil
}

func (d *Dpd) call(method, id string, query, body map[string]interface{}) (json.RawMessage, error) {
	req := &hooksv1.DpdRequest{
		InvocationId: d.c.invocation,
		Collection:   d.collection,
		Method:       method,
		Id:           id,
		QueryJson:    mustJSONObject("dpd query", query),
		BodyJson:     mustJSONObject("dpd body", body),
	}
	if d.c.host == nil {
		return nil, &DpdError{Status: 500, Message: "dpd is not available here (no host)"}
	}
	ctx := d.c.goctx
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := d.c.host.Dpd(ctx, req)
	if err != nil {
		return nil, &DpdError{Status: 500, Message: fmt.Sprintf("dpd %s %s: %v", method, d.collection, err)}
	}
	if len(res.GetErrorJson()) > 0 {
		e := &DpdError{}
		if json.Unmarshal(res.GetErrorJson(), e) != nil || e.Message == "" {
			e.Message = string(res.GetErrorJson())
		}
		if e.Status == 0 {
			e.Status = 500
		}
		return nil, e
	}
	raw := res.GetResultJson()
	if len(raw) == 0 {
		raw = []byte("null")
	}
	return raw, nil
}

func mustJSONObject(what string, v map[string]interface{}) []byte {
	if v == nil {
		return []byte("{}")
	}
	return mustJSON(what, v)
}

// HostCaller performs the host's `dpd` calls for a hook: HostService over go-plugin's broker in a
// sidecar, a fake in unit tests (see hookstest).
type HostCaller interface {
	Dpd(ctx context.Context, req *hooksv1.DpdRequest) (*hooksv1.DpdResponse, error)
}

// WithHost sets what the context's Dpd calls go to, and the invocation id they name (for tests
// and programs that build an EventContext themselves).
func (c *EventContext) WithHost(host HostCaller, invocation uint64) *EventContext {
	c.host, c.invocation = host, invocation
	return c
}

// brokerHost dials the host's HostService through go-plugin's broker once, when the program starts
// serving: the host announces it right after connecting, and the broker keeps an announcement
// only 5 s.
type brokerHost struct {
	ready  chan struct{}
	once   sync.Once
	client hooksv1.HostServiceClient
	conn   *grpc.ClientConn
	err    error
}

func newBrokerHost(broker *plugin.GRPCBroker) *brokerHost {
	h := &brokerHost{ready: make(chan struct{})}
	go func() {
		conn, err := broker.Dial(uint32(hooksv1.BrokerId_BROKER_ID_HOST_SERVICE))
		h.once.Do(func() {
			if err != nil {
				h.err = fmt.Errorf("the host did not offer its dpd service: %w", err)
			} else {
				h.conn, h.client = conn, hooksv1.NewHostServiceClient(conn)
			}
			close(h.ready)
		})
	}()
	return h
}

func (h *brokerHost) Dpd(ctx context.Context, req *hooksv1.DpdRequest) (*hooksv1.DpdResponse, error) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(10 * time.Second):
		return nil, errors.New("the host's dpd service did not connect")
	}
	if h.err != nil {
		return nil, h.err
	}
	return h.client.Dpd(ctx, req)
}
