package hub

import (
	"strings"
	"testing"
)

func TestRoomsAndControl(t *testing.T) {
	for _, tr := range networks() {
		t.Run(tr.name, func(t *testing.T) {
			s := startHub(t, tr, Config{})
			seed := s.connect(1)
			ann := s.connect(2)
			bob := s.connect(3)

			ann.send(`<passerelle:nick name="ann"/>` + "\x00")
			ann.expect(`<passerelle:nick name="ann"/>` + "\x00")
			ann.send(`<passerelle:join room="lobby"/>` + "\x00")
			ann.expect(`<passerelle:joined room="lobby" members="1"/>` + "\x00")
			bob.send(`<passerelle:join room="lobby"/>` + "\x00")
			bob.expect(`<passerelle:joined room="lobby" members="2"/>` + "\x00")
			s.waitRoom("lobby", 2)

			// Room traffic stays in the room; default traffic stays out.
			ann.send("in the lobby\x00")
			bob.expect("in the lobby\x00")
			seed.send("in default\x00")
			bob.send(`<passerelle:who/>` + "\x00")
			bob.expect(`<passerelle:members room="lobby" count="2"><passerelle:member name="ann"/></passerelle:members>` + "\x00")
			ann.send("marker\x00")
			bob.expect("marker\x00")

			// The seed client never saw a control reply nor lobby traffic.
			seed.send(`<passerelle:who/>` + "\x00")
			seed.expect(`<passerelle:members room="default" count="1"></passerelle:members>` + "\x00")
			seed.expectNothing()

			bob.send(`<passerelle:leave/>` + "\x00")
			bob.expect(`<passerelle:joined room="default" members="2"/>` + "\x00")
			seed.send("back together\x00")
			bob.expect("back together\x00")
			ann.send(`<passerelle:ping/>` + "\x00")
			ann.expect(`<passerelle:pong/>` + "\x00")
			ann.expectNothing()
		})
	}
}

func TestControlErrors(t *testing.T) {
	s := startHub(t, plainNetwork(), Config{})
	other := s.connect(1)
	other.send(`<passerelle:nick name="zoé"/>` + "\x00")
	other.expect(`<passerelle:nick name="zoé"/>` + "\x00")
	c := s.connect(2)
	tests := []struct {
		send, want string
	}{
		{`<passerelle:frob/>`, `<passerelle:error code="unknown-command" command="frob">unknown control message &lt;passerelle:frob&gt;; known: join, leave, nick, who, ping</passerelle:error>`},
		{`<passerelle:join room=""/>`, `<passerelle:error code="bad-room" command="join">room must not be empty</passerelle:error>`},
		{`<passerelle:join/>`, `<passerelle:error code="bad-room" command="join">room must not be empty</passerelle:error>`},
		{`<passerelle:join room="a/b"/>`, `<passerelle:error code="bad-room" command="join">room may hold only letters, digits, &#39;-&#39;, &#39;_&#39; and &#39;.&#39;, not &#39;/&#39;</passerelle:error>`},
		{`<passerelle:join room="` + strings.Repeat("a", 65) + `"/>`, `<passerelle:error code="bad-room" command="join">room is longer than 64 characters</passerelle:error>`},
		{`<passerelle:nick name=" ann"/>`, `<passerelle:error code="bad-nick" command="nick">nickname must not begin or end with a space</passerelle:error>`},
		{`<passerelle:nick name="zoé"/>`, `<passerelle:error code="nick-taken" command="nick">nickname &#34;zoé&#34; is taken</passerelle:error>`},
		{`<passerelle:join room="x">`, `<passerelle:error code="bad-xml" command="join">not well-formed XML: XML syntax error on line 1: unexpected EOF</passerelle:error>`},
		{`<passerelle:who/><passerelle:who/>`, `<passerelle:error code="bad-xml" command="who">one element per control message</passerelle:error>`},
		{`<passerelle:who/>text`, `<passerelle:error code="bad-xml" command="who">text outside the element</passerelle:error>`},
	}
	for _, tt := range tests {
		c.send(tt.send + "\x00")
		c.expect(tt.want + "\x00")
	}
	// Errors go to the asker only; the other client saw nothing.
	c.send("marker\x00")
	other.expect("marker\x00")
	other.expectNothing()
	// A nickname is freed when its holder leaves.
	other.conn.Close()
	s.waitRoom(DefaultRoom, 1)
	c.send(`<passerelle:nick name="zoé"/>` + "\x00")
	c.expect(`<passerelle:nick name="zoé"/>` + "\x00")
}

func TestNicknamesCompareAfterPRECIS(t *testing.T) {
	// While "ann" is held, nicknames that read the same (case, width,
	// compatibility forms) are taken, and look-alikes made of letters from
	// several scripts are refused. Accepted nicknames keep the form their
	// client wrote.
	s := startHub(t, plainNetwork(), Config{})
	holder := s.connect(1)
	holder.send(`<passerelle:nick name="ann"/>` + "\x00")
	holder.expect(`<passerelle:nick name="ann"/>` + "\x00")
	tests := []struct {
		name, want string
	}{
		{"ann", `<passerelle:error code="nick-taken" command="nick">nickname &#34;ann&#34; is taken</passerelle:error>`},
		{"Ann", `<passerelle:error code="nick-taken" command="nick">nickname &#34;Ann&#34; is taken (&#34;ann&#34; reads the same)</passerelle:error>`},
		{"ANN", `<passerelle:error code="nick-taken" command="nick">nickname &#34;ANN&#34; is taken (&#34;ann&#34; reads the same)</passerelle:error>`},
		{"ａｎｎ", `<passerelle:error code="nick-taken" command="nick">nickname &#34;ａｎｎ&#34; is taken (&#34;ann&#34; reads the same)</passerelle:error>`},
		{"аnn", `<passerelle:error code="bad-nick" command="nick">nickname mixes scripts: &#39;а&#39; is Cyrillic, &#39;n&#39; is Latin</passerelle:error>`},
		{"Αnn 2", `<passerelle:error code="bad-nick" command="nick">nickname mixes scripts: &#39;Α&#39; is Greek, &#39;n&#39; is Latin</passerelle:error>`},
		{"ann日本Ελ", `<passerelle:error code="bad-nick" command="nick">nickname mixes scripts: &#39;a&#39; is Latin, &#39;Ε&#39; is Greek</passerelle:error>`},
		{"ᄀ", `<passerelle:error code="bad-nick" command="nick">nickname holds a character that RFC 8266 does not allow in nicknames (precis: disallowed rune encountered)</passerelle:error>`},
		// Scripts written together, and single scripts, are fine.
		{"Ann-Marie", `<passerelle:nick name="Ann-Marie"/>`},
		{"山田たろう", `<passerelle:nick name="山田たろう"/>`},
		{"Taro 山田", `<passerelle:nick name="Taro 山田"/>`},
		{"Аня", `<passerelle:nick name="Аня"/>`},
		{"Ελένη_2", `<passerelle:nick name="Ελένη_2"/>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s.connect(2)
			defer func() {
				c.conn.Close()
				s.waitRoom(DefaultRoom, 1)
			}()
			c.send(`<passerelle:nick name="` + tt.name + `"/>` + "\x00")
			c.expect(tt.want + "\x00")
		})
	}

	// The holder may change the case of its own nickname; the others see
	// the form it wrote.
	holder.send(`<passerelle:nick name="ANN"/>` + "\x00")
	holder.expect(`<passerelle:nick name="ANN"/>` + "\x00")
	other := s.connect(2)
	other.send(`<passerelle:nick name="ann"/>` + "\x00")
	other.expect(`<passerelle:error code="nick-taken" command="nick">nickname &#34;ann&#34; is taken (&#34;ANN&#34; reads the same)</passerelle:error>` + "\x00")
	other.send(`<passerelle:who/>` + "\x00")
	other.expect(`<passerelle:members room="default" count="2"><passerelle:member name="ANN"/></passerelle:members>` + "\x00")
	// Leaving frees the nickname under every form.
	holder.conn.Close()
	s.waitRoom(DefaultRoom, 1)
	other.send(`<passerelle:nick name="ａｎｎ"/>` + "\x00")
	other.expect(`<passerelle:nick name="ａｎｎ"/>` + "\x00")
}
