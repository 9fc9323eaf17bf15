package hub

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Control messages are XML elements with the "passerelle:" prefix, one per
// message. A client of the seed's chat (the PHP relay of the Flash sockets
// chapter) never sends them, so it never sees a reply. Each is answered to
// the asker only, in order with the messages relayed to it:
//
//	<passerelle:join room="lobby"/>  -> <passerelle:joined room="lobby" members="3"/>
//	<passerelle:leave/>              -> <passerelle:joined room="default" members="5"/>
//	<passerelle:nick name="ann"/>    -> <passerelle:nick name="ann"/>
//	<passerelle:who/>                -> <passerelle:members room="lobby" count="3"><passerelle:member name="ann"/>...</passerelle:members>
//	<passerelle:ping/>               -> <passerelle:pong/>
//
// A bad one gets <passerelle:error code="..." command="...">text</passerelle:error>;
// the codes are the constants below. Nicknames are compared as nick.go
// says: "Ann" and "ａｎｎ" are taken while "ann" is held.
const (
	errBadXML         = "bad-xml"
	errUnknownCommand = "unknown-command"
	errBadRoom        = "bad-room"
	errBadNick        = "bad-nick"
	errNickTaken      = "nick-taken"
)

const (
	maxRoomLen = 64
	maxNickLen = 32
)

// control handles one control frame from c.
func (h *Hub) control(c *client, frame []byte) {
	cmd, attrs, err := parseControl(frame)
	if err != nil {
		c.reply(errorElement(errBadXML, cmd, err.Error()))
		return
	}
	switch cmd {
	case "join":
		name := attrs["room"]
		if err := checkName(name, maxRoomLen, false); err != nil {
			c.reply(errorElement(errBadRoom, cmd, "room "+err.Error()))
			return
		}
		c.reply(h.join(c, name))
	case "leave":
		c.reply(h.join(c, DefaultRoom))
	case "nick":
		name := attrs["name"]
		if err := checkName(name, maxNickLen, true); err != nil {
			c.reply(errorElement(errBadNick, cmd, "nickname "+err.Error()))
			return
		}
		key, err := nickKey(name)
		if err != nil {
			c.reply(errorElement(errBadNick, cmd, "nickname "+err.Error()))
			return
		}
		if holder, ok := h.setNick(c, name, key); !ok {
			text := fmt.Sprintf("nickname %q is taken", name)
			if holder != name {
				text += fmt.Sprintf(" (%q reads the same)", holder)
			}
			c.reply(errorElement(errNickTaken, cmd, text))
			return
		}
		c.reply(element("nick", "name", name))
	case "who":
		room, names, n := h.members(c)
		var b bytes.Buffer
		b.WriteString(`<passerelle:members room="`)
		xml.EscapeText(&b, []byte(room))
		b.WriteString(`" count="` + strconv.Itoa(n) + `">`)
		for _, name := range names {
			b.WriteString(`<passerelle:member name="`)
			xml.EscapeText(&b, []byte(name))
			b.WriteString(`"/>`)
		}
		b.WriteString("</passerelle:members>\x00")
		c.reply(b.Bytes())
	case "ping":
		c.reply(element("pong"))
	default:
		c.reply(errorElement(errUnknownCommand, cmd,
			fmt.Sprintf("unknown control message <passerelle:%s>; known: join, leave, nick, who, ping", cmd)))
	}
}

// join moves c to the named room and returns the reply, whose count
// includes the room's members on the other nodes of a cluster.
func (h *Hub) join(c *client, name string) []byte {
	h.mu.Lock()
	h.move(c, name)
	n := len(c.room.members)
	h.mu.Unlock()
	if l := h.cfg.Link; l != nil {
		if _, more, err := l.Members(name); err == nil {
			n += more
		}
	}
	return element("joined", "room", name, "members", strconv.Itoa(n))
}

// setNick gives c the nickname name, whose comparison key is key, unless
// another client holds a nickname with that key, here or on another node;
// then it returns that nickname, as its holder wrote it.
func (h *Hub) setNick(c *client, name, key string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if other := h.nicks[key]; other != nil && other != c {
		if other.nickKey != key { // reserved while another node is asked
			return name, false
		}
		return other.nick, false
	}
	l := h.cfg.Link
	if l != nil && c.nickKey != key {
		// Reserve the key here, so that no other client of this node
		// claims it meanwhile, and ask the other nodes without the lock.
		// Only c's own goroutine (this one) changes c's nickname, or
		// unregisters c, so the reservation is still c's afterwards.
		h.nicks[key] = c
		h.mu.Unlock()
		holder, ok, err := l.ClaimNick(key, name)
		h.mu.Lock()
		if err != nil {
			h.peerLog.Warn("chat_nick_local", "chat nickname claimed on this node only: the other nodes cannot be asked",
				"remote_addr", c.addr, "nick", name, "error", err.Error())
		} else if !ok {
			delete(h.nicks, key)
			return holder, false
		}
	}
	if c.nickKey != "" && c.nickKey != key {
		delete(h.nicks, c.nickKey)
		if l != nil {
			l.ReleaseNick(c.nickKey)
		}
	}
	c.nick, c.nickKey = name, key
	h.nicks[key] = c
	if l != nil && c.room != nil {
		l.Changed(c.room.name)
	}
	return name, true
}

// reply queues a control answer to c alone.
func (c *client) reply(frame []byte) { c.enqueue(frame) }

// parseControl reads one "<passerelle:NAME attr=.../>" element. It returns
// the command name (as far as it could be read) and the attributes.
func parseControl(frame []byte) (string, map[string]string, error) {
	body := bytes.TrimSuffix(frame, []byte{0})
	cmd := string(body[min(len(controlPrefix), len(body)):])
	if i := strings.IndexAny(cmd, " \t\r\n/>"); i >= 0 {
		cmd = cmd[:i]
	}
	if !utf8.ValidString(cmd) || len(cmd) > 32 {
		cmd = ""
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	var start *xml.StartElement
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cmd, nil, fmt.Errorf("not well-formed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if start == nil {
				s := t.Copy()
				start = &s
			} else if depth == 0 {
				return cmd, nil, errors.New("one element per control message")
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return cmd, nil, errors.New("text outside the element")
			}
		}
	}
	if start == nil {
		return cmd, nil, errors.New("no element")
	}
	attrs := make(map[string]string, len(start.Attr))
	for _, a := range start.Attr {
		attrs[a.Name.Local] = a.Value
	}
	return start.Name.Local, attrs, nil
}

// checkName accepts 1 to maxLen characters: letters, digits, '-', '_' and
// '.', and, when spaces is set (nicknames), inner spaces.
func checkName(s string, maxLen int, spaces bool) error {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0:
		return fmt.Errorf("must not be empty")
	case n > maxLen:
		return fmt.Errorf("is longer than %d characters", maxLen)
	}
	for _, r := range s {
		ok := unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.' ||
			(spaces && r == ' ')
		if !ok {
			allowed := "letters, digits, '-', '_' and '.'"
			if spaces {
				allowed = "letters, digits, spaces, '-', '_' and '.'"
			}
			return fmt.Errorf("may hold only %s, not %q", allowed, r)
		}
	}
	if spaces && strings.TrimSpace(s) != s {
		return fmt.Errorf("must not begin or end with a space")
	}
	return nil
}

// element builds "<passerelle:NAME k="v" .../>" and its NUL.
func element(name string, kv ...string) []byte {
	var b bytes.Buffer
	b.WriteString("<passerelle:" + name)
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(" " + kv[i] + `="`)
		xml.EscapeText(&b, []byte(kv[i+1]))
		b.WriteString(`"`)
	}
	b.WriteString("/>\x00")
	return b.Bytes()
}

// errorElement builds the error reply.
func errorElement(code, cmd, text string) []byte {
	var b bytes.Buffer
	b.WriteString(`<passerelle:error code="` + code + `"`)
	if cmd != "" {
		b.WriteString(` command="`)
		xml.EscapeText(&b, []byte(cmd))
		b.WriteString(`"`)
	}
	b.WriteString(">")
	xml.EscapeText(&b, []byte(text))
	b.WriteString("</passerelle:error>\x00")
	return b.Bytes()
}
