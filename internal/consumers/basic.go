package consumers

import (
	"errors"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// ByBasic returns the consumer whose basic-auth user and password these
// are, or nil. An unknown user is compared against a dummy hash of the
// same cost, so the answer time does not reveal which users exist.
func (d *Directory) ByBasic(user, password string) *Consumer {
	u, ok := d.byUser[user]
	hash, dummy := u.hash, d.dummyHash
	if !ok {
		// Runtime users come second; one whose consumer's name the
		// config took counts as unknown (config wins).
		if ix := d.runtime(); ix != nil {
			if ru, rok := ix.byUser[user]; rok && d.byName[ru.consumer.Name] == nil {
				u, ok, hash = ru, true, ru.hash
			}
			if dummy == nil || ix.dummyHash != nil && hashCost(ix.dummyHash) > hashCost(dummy) {
				dummy = ix.dummyHash // the higher cost of the two
			}
		}
	}
	if !ok {
		hash = dummy
		if hash == nil {
			return nil // no basic users at all: nothing to reveal
		}
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	if err != nil || !ok {
		return nil
	}
	return u.consumer
}

func hashCost(h []byte) int {
	c, _ := bcrypt.Cost(h)
	return c
}

// bcryptCost reads the cost of a bcrypt hash.
func bcryptCost(hash string) (int, error) {
	c, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return 0, errors.New("not a bcrypt hash")
	}
	return c, nil
}

// dummies caches one dummy hash per cost: making one takes as long as
// checking a password, which a config reload should pay once.
var dummies sync.Map // int -> []byte

func dummyHash(cost int) []byte {
	if cost < bcrypt.MinCost {
		cost = bcrypt.DefaultCost
	}
	if h, ok := dummies.Load(cost); ok {
		return h.([]byte)
	}
	h, err := bcrypt.GenerateFromPassword([]byte("portunus: no such user"), cost)
	if err != nil {
		// Cannot happen for a cost read from a valid hash; a nil dummy
		// would answer unknown users at once, so fail closed and loud.
		panic("consumers: dummy bcrypt hash: " + err.Error())
	}
	h2, _ := dummies.LoadOrStore(cost, h)
	return h2.([]byte)
}
