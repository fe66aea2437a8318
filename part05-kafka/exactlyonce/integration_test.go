//go:build integration

package exactlyonce_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part05-kafka/exactlyonce"
	"github.com/sysdesign-masterclass/golang/part05-kafka/internal/kafkatest"
)

// effects is a business table whose writes are not idempotent: each applied
// message adds a row, so a message applied twice is two rows.
func effects(t *testing.T, db *pgxpool.Pool) (table string, h exactlyonce.Handler, count func() int) {
	t.Helper()
	table = exactlyonce.Schema + `."` + kafkatest.Name("effects") + `"`
	_, err := db.Exec(t.Context(), `CREATE TABLE `+table+` ("offset" bigint NOT NULL)`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = db.Exec(context.Background(), `DROP TABLE `+table) })
	h = func(b *pgx.Batch, m kafka.Message) error {
		b.Queue(`INSERT INTO `+table+` VALUES ($1)`, m.Offset)
		return nil
	}
	count = func() int {
		var n int
		require.NoError(t, db.QueryRow(t.Context(), `SELECT count(*) FROM `+table).Scan(&n))
		return n
	}
	return table, h, count
}

// namedPool is a pool to db's database whose sessions carry
// application_name app, so the test can see in pg_stat_activity what they
// wait for.
func namedPool(t *testing.T, db *pgxpool.Pool, app string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.Config().ConnString())
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	p, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// outcome is what an Apply run in a goroutine returned.
type outcome struct {
	res exactlyonce.Result
	err error
}

func msgs(from, to int64) []kafka.Message {
	var out []kafka.Message
	for o := from; o <= to; o++ {
		out = append(out, kafka.Message{Partition: 0, Offset: o, Value: []byte(fmt.Sprint(o))})
	}
	return out
}

// The article's schema and queries name a column offset, a reserved word in
// PostgreSQL: CREATE TABLE fails with a syntax error, and so does every
// query that names the column unquoted. Quoted it works; the chapter's
// table calls it next_offset.
func TestArticleOffsetIsAReservedWord(t *testing.T) {
	db := kafkatest.DB(t)
	name := exactlyonce.Schema + `."` + kafkatest.Name("kafka_offsets") + `"`
	_, err := db.Exec(t.Context(), `CREATE TABLE `+name+` (
		topic     VARCHAR(255) NOT NULL,
		partition INT          NOT NULL,
		offset    BIGINT       NOT NULL,
		PRIMARY KEY (topic, partition))`)
	var pg *pgconn.PgError
	require.ErrorAs(t, err, &pg)
	assert.Equal(t, "42601", pg.Code, "syntax_error")
	assert.Equal(t, `syntax error at or near "offset"`, pg.Message)

	_, err = db.Exec(t.Context(), `CREATE TABLE `+name+` (topic text, partition int, "offset" bigint, PRIMARY KEY (topic, partition))`)
	require.NoError(t, err, "quoted, the column is fine")
	t.Cleanup(func() { _, _ = db.Exec(context.Background(), `DROP TABLE `+name) })
	_, err = db.Exec(t.Context(), `SELECT 1 FROM `+name+` WHERE topic = 'order-events' AND partition = 0 AND offset = 1`)
	require.ErrorAs(t, err, &pg)
	assert.Equal(t, "42601", pg.Code, "the article's duplicate check, unquoted")
}

// articleProcess is the article's ProcessOrderEvent with the column quoted:
// skip only if the stored offset equals the message's, write, upsert.
func articleProcess(ctx context.Context, db *pgxpool.Pool, table string, effect exactlyonce.Handler, m kafka.Message, cmp string) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+` WHERE topic = 'order-events'
			AND partition = $1 AND "offset" `+cmp+` $2)`, m.Partition, m.Offset).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		b := &pgx.Batch{}
		if err := effect(b, m); err != nil {
			return err
		}
		b.Queue(`INSERT INTO `+table+` (topic, partition, "offset") VALUES ('order-events', $1, $2)
			ON CONFLICT (topic, partition) DO UPDATE SET "offset" = EXCLUDED."offset"`, m.Partition, m.Offset)
		return tx.SendBatch(ctx, b).Close()
	})
}

// A consumer applies offsets 0..9, the group's last commit was after 4, it
// crashes and re-reads 5..9. The article's check (stored offset = message
// offset) matches none of them: 5 differs from the stored 9 and is applied,
// which overwrites the stored offset with 5, so 6 differs too, and so on; all
// five are applied a second time. Checking
// stored offset >= message offset skips all five, and so does Store.Apply,
// which also resumes at the stored offset instead of re-reading.
func TestArticleEqualityCheckReappliesAReplay(t *testing.T) {
	db := kafkatest.DB(t)
	for _, tt := range []struct {
		cmp        string
		duplicates int
	}{{"=", 5}, {">=", 0}} {
		t.Run("stored offset "+tt.cmp+" message offset", func(t *testing.T) {
			offsets := exactlyonce.Schema + `."` + kafkatest.Name("kafka_offsets") + `"`
			_, err := db.Exec(t.Context(), `CREATE TABLE `+offsets+` (topic text, partition int, "offset" bigint, PRIMARY KEY (topic, partition))`)
			require.NoError(t, err)
			t.Cleanup(func() { _, _ = db.Exec(context.Background(), `DROP TABLE `+offsets) })
			_, h, count := effects(t, db)
			for _, m := range append(msgs(0, 9), msgs(5, 9)...) { // the replay after the crash
				require.NoError(t, articleProcess(t.Context(), db, offsets, h, m, tt.cmp))
			}
			assert.Equal(t, 10+tt.duplicates, count(), "effects of 10 messages")
		})
	}
	t.Run("Store.Apply", func(t *testing.T) {
		_, h, count := effects(t, db)
		s := exactlyonce.New(db, kafkatest.Name("g"))
		res, err := s.Apply(t.Context(), "order-events", 0, msgs(0, 9), h, nil)
		require.NoError(t, err)
		assert.Equal(t, exactlyonce.Result{Applied: 10, Next: 10}, res)
		res, err = s.Apply(t.Context(), "order-events", 0, msgs(5, 12), h, nil)
		require.NoError(t, err)
		assert.Equal(t, exactlyonce.Result{Applied: 3, Skipped: 5, Next: 13}, res)
		assert.Equal(t, 13, count())
		off, err := s.Offsets(t.Context(), "order-events")
		require.NoError(t, err)
		assert.Equal(t, map[int]int64{0: 13}, off, "where a restarted consumer resumes")
	})
}

// The article's check does not lock: two consumers of one partition (a
// zombie whose session expired and the partition's new owner) both find
// the offset unprocessed, both write, and both commit; the offset upsert
// only serialises their last statement. Here the zombie is held between
// its check and its write while the owner processes the same message.
func TestArticleCheckDoesNotStopASecondConsumer(t *testing.T) {
	db := kafkatest.DB(t)
	offsets := exactlyonce.Schema + `."` + kafkatest.Name("kafka_offsets") + `"`
	_, err := db.Exec(t.Context(), `CREATE TABLE `+offsets+` (topic text, partition int, "offset" bigint, PRIMARY KEY (topic, partition))`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = db.Exec(context.Background(), `DROP TABLE `+offsets) })
	_, h, count := effects(t, db)
	require.NoError(t, articleProcess(t.Context(), db, offsets, h, msgs(0, 0)[0], "="))

	m := msgs(1, 1)[0]
	checked, release := make(chan struct{}), make(chan struct{})
	zombie := make(chan error, 1)
	go func() {
		zombie <- articleProcess(context.Background(), db, offsets, func(b *pgx.Batch, m kafka.Message) error {
			close(checked) // the check passed
			<-release
			return h(b, m)
		}, m, "=")
	}()
	select {
	case <-checked:
	case <-time.After(time.Minute):
		close(release)
		require.FailNow(t, "the zombie never passed its check")
	}
	require.NoError(t, articleProcess(t.Context(), db, offsets, h, m, "="), "the owner did not wait for the zombie")
	close(release)
	require.NoError(t, <-zombie)
	assert.Equal(t, 3, count(), "offset 1 applied twice: 3 effects for 2 messages")
}

// Two consumers apply the same batch at once (a zombie and the new owner
// after a rebalance): the offset row's lock makes the second wait and skip.
func TestConcurrentAppliesOfOneBatchApplyOnce(t *testing.T) {
	db := kafkatest.DB(t)
	_, h, count := effects(t, db)
	s := exactlyonce.New(db, kafkatest.Name("g"))
	_, err := s.Apply(t.Context(), "t", 0, msgs(0, 0), h, nil) // the row exists: both lock it
	require.NoError(t, err)
	var wg sync.WaitGroup
	results := make([]exactlyonce.Result, 8)
	for i := range results {
		wg.Go(func() {
			var err error
			results[i], err = s.Apply(context.Background(), "t", 0, msgs(1, 100), h, nil)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	applied := 0
	for _, r := range results {
		applied += r.Applied
	}
	assert.Equal(t, 100, applied, "one Apply applied the batch, the others skipped it")
	assert.Equal(t, 101, count())
}

// The same race on a partition's very first batch, when there is no offset
// row yet for FOR UPDATE to lock: a zombie (its session expired while it
// was paused inside the transaction) holds the batch open, the new owner
// applies the partition from its start, then the zombie wakes up and
// commits. Without a row to wait on, the owner did not wait: the zombie's
// 10 messages were applied a second time and the stored offset moved back
// from 20 to 10. Apply now creates the row before it locks it, so the
// owner waits for the zombie and skips what it applied.
func TestFirstBatchOfAPartitionAppliesOnceUnderTwoOwners(t *testing.T) {
	db := kafkatest.DB(t)
	_, h, count := effects(t, db)
	group := kafkatest.Name("g")
	app := kafkatest.Name("owner")
	ownerDB := namedPool(t, db, app)
	inside, release := make(chan struct{}), make(chan struct{})
	zombie, owner := make(chan outcome, 1), make(chan outcome, 1)
	go func() {
		first := true
		res, err := exactlyonce.New(db, group).Apply(context.Background(), "t", 0, msgs(0, 9), func(b *pgx.Batch, m kafka.Message) error {
			if first {
				first = false
				close(inside)
				<-release // paused here, inside the open transaction
			}
			return h(b, m)
		}, nil)
		zombie <- outcome{res, err}
	}()
	select {
	case <-inside:
	case <-time.After(time.Minute):
		close(release)
		require.FailNow(t, "the zombie's Apply never reached its handler")
	}
	go func() {
		res, err := exactlyonce.New(ownerDB, group).Apply(context.Background(), "t", 0, msgs(0, 19), h, nil)
		owner <- outcome{res, err}
	}()
	// The owner either finishes (it did not wait for the zombie) or waits
	// for a lock the zombie holds; then the zombie wakes up.
	var o outcome
	ownerDone := false
	kafkatest.WaitFor(t, time.Minute, func() (bool, string) {
		select {
		case o = <-owner:
			ownerDone = true
			return true, ""
		default:
		}
		var waiting bool
		err := db.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock')`, app).Scan(&waiting)
		return err == nil && waiting, fmt.Sprintf("the owner neither finished nor waits for a lock (%v)", err)
	})
	close(release)
	z := <-zombie
	if !ownerDone {
		o = <-owner
	}
	require.NoError(t, z.err)
	require.NoError(t, o.err)
	t.Logf("zombie %+v, owner %+v (owner waited: %v)", z.res, o.res, !ownerDone)
	assert.Equal(t, 20, z.res.Applied+o.res.Applied, "each of the 20 messages applied by one of them")
	assert.Equal(t, 20, count(), "effects of 20 messages")
	off, err := exactlyonce.New(db, group).Offsets(t.Context(), "t")
	require.NoError(t, err)
	assert.Equal(t, map[int]int64{0: 20}, off, "the stored offset never moves back")
}

// A failing statement names its message; a data error is permanent, and
// nothing of the batch was applied. A dead offset is recorded, not handled.
func TestApplyErrorsNameTheMessage(t *testing.T) {
	db := kafkatest.DB(t)
	table, h, count := effects(t, db)
	s := exactlyonce.New(db, kafkatest.Name("g"))
	bad := func(b *pgx.Batch, m kafka.Message) error {
		if m.Offset == 3 {
			b.Queue(`INSERT INTO ` + table + ` VALUES (NULL)`) // not null violation: class 23
			return nil
		}
		return h(b, m)
	}
	_, err := s.Apply(t.Context(), "t", 0, msgs(0, 5), bad, nil)
	var me *exactlyonce.MessageError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, int64(3), me.Message.Offset)
	assert.True(t, me.Permanent)
	assert.Zero(t, count(), "rolled back")

	decodeErr := exactlyonce.Permanent(errors.New("not JSON"))
	_, err = s.Apply(t.Context(), "t", 0, msgs(0, 5), func(b *pgx.Batch, m kafka.Message) error {
		if m.Offset == 4 {
			return decodeErr
		}
		return h(b, m)
	}, nil)
	require.ErrorAs(t, err, &me)
	assert.Equal(t, int64(4), me.Message.Offset)
	assert.True(t, me.Permanent)

	res, err := s.Apply(t.Context(), "t", 0, msgs(0, 5), bad, map[int64]string{3: "permanent"})
	require.NoError(t, err)
	assert.Equal(t, exactlyonce.Result{Applied: 5, Dead: 1, Next: 6}, res)
	assert.Equal(t, 5, count())
}

// A connection lost in the middle of a batch (here the batch's own statement
// terminates its backend) is the database's failure, not the message's:
// Apply returns it unattributed, so the consumer retries instead of counting
// an attempt against the message that happened to be running; nothing of the
// batch was applied, and the next Apply goes through.
func TestLostConnectionIsNotTheMessages(t *testing.T) {
	db := kafkatest.DB(t)
	_, h, count := effects(t, db)
	s := exactlyonce.New(db, kafkatest.Name("g"))
	_, err := s.Apply(t.Context(), "t", 0, msgs(0, 5), func(b *pgx.Batch, m kafka.Message) error {
		if m.Offset == 3 {
			b.Queue(`SELECT pg_terminate_backend(pg_backend_pid())`)
		}
		return h(b, m)
	}, nil)
	require.Error(t, err)
	var me *exactlyonce.MessageError
	assert.False(t, errors.As(err, &me), "not attributed to offset 3: %v", err)
	assert.False(t, exactlyonce.IsPermanent(err))
	assert.Zero(t, count())
	res, err := s.Apply(t.Context(), "t", 0, msgs(0, 5), h, nil)
	require.NoError(t, err)
	assert.Equal(t, 6, res.Applied)
}

// A context that ends while a COMMIT is on its way leaves the caller not
// knowing whether the batch committed: PostgreSQL finishes a COMMIT it has
// received whatever the client does meanwhile. A consumer whose partition is
// revoked (or which is told to stop) mid-commit would count the batch as
// not applied while it was. Apply waits for the answer to the COMMIT it sent
// (up to CommitWait) even after its context ends, so what it reports is what
// PostgreSQL did. Here a deferred trigger holds the COMMIT on an advisory
// lock the test holds; the test cancels Apply's context while the COMMIT
// waits on the lock, then releases it.
func TestApplyReportsTheCommitItsContextEndedDuring(t *testing.T) {
	db := kafkatest.DB(t)
	table, h, count := effects(t, db)
	key := time.Now().UnixNano()
	fn := exactlyonce.Schema + `."` + kafkatest.Name("gate") + `"`
	_, err := db.Exec(t.Context(), `CREATE FUNCTION `+fn+`() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_advisory_xact_lock(`+strconv.FormatInt(key, 10)+`); RETURN NULL; END $$`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = db.Exec(context.Background(), `DROP FUNCTION `+fn+` CASCADE`) })
	_, err = db.Exec(t.Context(), `CREATE CONSTRAINT TRIGGER gate AFTER INSERT ON `+table+`
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION `+fn+`()`)
	require.NoError(t, err)

	gate, err := db.Acquire(t.Context())
	require.NoError(t, err)
	defer gate.Release()
	_, err = gate.Exec(t.Context(), `SELECT pg_advisory_lock($1)`, key)
	require.NoError(t, err)

	app := kafkatest.Name("committer")
	appDB := namedPool(t, db, app)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan outcome, 1)
	s := exactlyonce.New(appDB, kafkatest.Name("g"))
	go func() {
		res, err := s.Apply(ctx, "t", 0, msgs(0, 9), h, nil)
		done <- outcome{res, err}
	}()
	kafkatest.WaitFor(t, time.Minute, func() (bool, string) {
		var waiting bool
		err := db.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock' AND query ILIKE 'commit')`, app).Scan(&waiting)
		return err == nil && waiting, fmt.Sprintf("Apply's COMMIT does not wait on the gate (%v)", err)
	})
	cancel() // Apply's context ends while PostgreSQL holds its COMMIT
	_, err = gate.Exec(t.Context(), `SELECT pg_advisory_unlock($1)`, key)
	require.NoError(t, err)
	var o outcome
	select {
	case o = <-done:
	case <-time.After(time.Minute):
		require.FailNow(t, "Apply did not return within a minute of the COMMIT's release")
	}
	kafkatest.WaitFor(t, time.Minute, func() (bool, string) { // the COMMIT's backend is done, whatever Apply said
		var busy bool
		err := db.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE application_name = $1 AND state <> 'idle')`, app).Scan(&busy)
		return err == nil && !busy, fmt.Sprintf("Apply's backend is still busy (%v)", err)
	})
	t.Logf("Apply returned %+v, %v; effects in the table: %d", o.res, o.err, count())
	assert.NoError(t, o.err, "the COMMIT went through: Apply says so")
	assert.Equal(t, exactlyonce.Result{Applied: 10, Next: 10}, o.res)
	assert.Equal(t, 10, count(), "committed")
	off, err := s.Offsets(t.Context(), "t")
	require.NoError(t, err)
	assert.Equal(t, map[int]int64{0: 10}, off)
}
