-- Appends no longer announce themselves from inside their transaction. A NOTIFY there takes
-- PostgreSQL's notification lock at commit and so serializes every appending transaction behind
-- it; measured with 32 single-row writers it halved what the events table absorbs. The command
-- service now sends the notification on its own connection after the appends commit (many
-- commits share one), and the relay still polls for appends made anywhere else.
DROP TRIGGER events_appended ON events;
DROP FUNCTION cstrack_notify_append();
