// A customer's tags on the 360 (docs/WEB.md, "Tags"): shown as they were written, each a link to
// the customer list filtered by it; the team puts one on or takes one off here.

import { useState } from "react";
import { Link } from "react-router-dom";
import { Button, DismissibleTag, Tag, TextInput } from "@carbon/react";
import { useSession } from "./App";
import { command, CommandError } from "./api/commands";

export function CustomerTags({ customerId, tags, writable, onChange }: { customerId: string; tags: string[]; writable: boolean; onChange: () => void }) {
  const session = useSession();
  const [adding, setAdding] = useState(false);
  const [tag, setTag] = useState("");
  const [error, setError] = useState<string | null>(null);
  const send = async (path: string, body: unknown) => {
    setError(null);
    try {
      await command(session, "POST", `/api/v1/customers/${customerId}${path}`, body);
      onChange();
      return true;
    } catch (e) {
      setError(CommandError.from(e).message);
      return false;
    }
  };
  return (
    <div className="cs-toolbar" style={{ alignItems: "center", marginBottom: "1rem" }} data-testid="customer-tags">
      {tags.map((t) =>
        writable ? (
          <DismissibleTag key={t} type="outline" size="sm" text={t} title={`Remove the tag ${t}`} onClose={() => send("/tags/remove", { tag: t })} />
        ) : (
          <Tag key={t} type="outline" size="sm">
            <Link to={`/customers?tag=${encodeURIComponent(t)}`}>{t}</Link>
          </Tag>
        ),
      )}
      {!tags.length && !writable ? <span className="cs-muted">No tags</span> : null}
      {writable && adding ? (
        <form
          className="cs-toolbar"
          style={{ alignItems: "end" }}
          onSubmit={async (event) => {
            event.preventDefault();
            if (await send("/tags", { tag: tag.trim() })) {
              setTag("");
              setAdding(false);
            }
          }}
        >
          <TextInput id="new-tag" size="sm" labelText="New tag" value={tag} maxLength={40} onChange={(e) => setTag(e.target.value)} />
          <Button type="submit" size="sm" disabled={!tag.trim()}>
            Add
          </Button>
        </form>
      ) : writable ? (
        <Button kind="ghost" size="sm" onClick={() => setAdding(true)}>
          Add a tag
        </Button>
      ) : null}
      {error ? (
        <span role="alert" style={{ color: "#da1e28" }}>
          {error}
        </span>
      ) : null}
    </div>
  );
}
