// "My focus": the accounts a user pinned to keep in view (docs/WEB.md). Pinning is the user's
// own list, written at once, so the list and the 360 read it back straight away.

import { useState } from "react";
import { Button } from "@carbon/react";
import { useSession } from "./App";
import { CommandError, command } from "./api/commands";

export function PinButton({ customerId, name, pinned, onChange }: { customerId: string; name: string; pinned: boolean; onChange: () => void }) {
  const session = useSession();
  const [state, setState] = useState<{ busy: boolean; error: string | null }>({ busy: false, error: null });
  const toggle = async () => {
    setState({ busy: true, error: null });
    try {
      await command(session, pinned ? "DELETE" : "PUT", `/api/v1/customers/${customerId}/focus`);
      setState({ busy: false, error: null });
      onChange();
    } catch (error) {
      setState({ busy: false, error: CommandError.from(error).message });
    }
  };
  return (
    <>
      <Button
        kind="ghost"
        size="sm"
        disabled={state.busy}
        title={pinned ? "In my focus: select to unpin it" : "Pin to my focus"}
        onClick={toggle}
        data-testid="focus-pin"
      >
        {pinned ? "★ Unpin" : "☆ Pin"}
        <span className="cs-visually-hidden">{pinned ? ` ${name} from my focus` : ` ${name} to my focus`}</span>
      </Button>
      {state.error ? (
        <span className="cs-error-text" role="alert">
          {state.error}
        </span>
      ) : null}
    </>
  );
}
