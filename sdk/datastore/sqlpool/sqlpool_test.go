package sqlpool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"testing"
)

// nopConnector lets sql.OpenDB build a *sql.DB without any server: OpenDB never dials.
type nopConnector struct{}

func (nopConnector) Connect(context.Context) (driver.Conn, error) {
	return nil, errors.New("no server")
}
func (nopConnector) Driver() driver.Driver { return nil }

func open() (*sql.DB, error) { return sql.OpenDB(nopConnector{}), nil }

func TestSameKeySharesAPool(t *testing.T) {
	p := New(DefaultMax)
	defer p.Close()
	a, relA, err := p.Get(NewKey([]byte("db:3306"), []byte("root")), open)
	if err != nil {
		t.Fatal(err)
	}
	b, relB, _ := p.Get(NewKey([]byte("db:3306"), []byte("root")), open)
	c, relC, _ := p.Get(NewKey([]byte("db:3306"), []byte("other")), open)
	defer relA()
	defer relB()
	defer relC()
	if a != b || a == c || p.Len() != 2 {
		t.Fatalf("same key shared: %v, other key apart: %v, %d pools", a == b, a != c, p.Len())
	}
	// Parts are length-prefixed: moving a byte between parts is another key.
	if NewKey([]byte("ab"), []byte("c")) == NewKey([]byte("a"), []byte("bc")) {
		t.Error("keys of different parts collide")
	}
}

func TestIdlePoolsAreEvictedButNotOnesInUse(t *testing.T) {
	p := New(1)
	defer p.Close()
	busy, releaseBusy, _ := p.Get(NewKey([]byte("busy")), open)
	idle, releaseIdle, _ := p.Get(NewKey([]byte("idle")), open)
	releaseIdle()
	releaseIdle() // a second release changes nothing
	_, releaseNew, _ := p.Get(NewKey([]byte("new")), open)
	defer releaseNew()
	if err := busy.Ping(); err == nil || err.Error() == "sql: database is closed" {
		t.Errorf("the pool in use was closed: %v", err)
	}
	if err := idle.Ping(); err == nil || err.Error() != "sql: database is closed" {
		t.Errorf("the idle pool was kept: %v", err)
	}
	if p.Len() != 2 {
		t.Errorf("%d pools, want the busy one and the new one", p.Len())
	}
	releaseBusy()
}

func TestOpenErrorIsReturned(t *testing.T) {
	p := New(DefaultMax)
	want := errors.New("bad config")
	if _, _, err := p.Get(NewKey([]byte("x")), func() (*sql.DB, error) { return nil, want }); !errors.Is(err, want) {
		t.Fatalf("got %v", err)
	}
	if p.Len() != 0 {
		t.Errorf("%d pools after a failed open", p.Len())
	}
}
