// Settings: each user's notification preferences; for admins and managers the rules with their
// what-if preview, the CSMs and their capacity, the partner organisations and their users,
// custom fields, connectors, the deck template and the webhooks that carry alerts and events to
// other systems (docs/WEB.md). Each tab is its own module under ./settings.

import { useSearchParams } from "react-router-dom";
import { Tab, TabList, TabPanel, TabPanels, Tabs } from "@carbon/react";
import { useSession } from "../App";
import { Preferences } from "./settings/Preferences";
import { Rules } from "./settings/Rules";
import { Team } from "./settings/Team";
import { ChurnRisk } from "./settings/ChurnRisk";
import { ReminderRules } from "./settings/ReminderRules";
import { TaskTemplates } from "./settings/TaskTemplates";
import { Playbooks } from "./settings/Playbooks";
import { Partners } from "./settings/Partners";
import { CustomFields } from "./settings/CustomFields";
import { Connectors } from "./settings/Connectors";
import { DeckTemplate } from "./settings/DeckTemplate";
import { Webhooks } from "./settings/Webhooks";

/** The settings tabs, each for the roles that may use it (the API enforces the same rules). */
const TABS: Array<{ label: string; show: (role: string) => boolean; Panel: () => React.ReactElement }> = [
  { label: "My notifications", show: () => true, Panel: Preferences },
  { label: "Rules", show: (role) => role === "admin" || role === "manager", Panel: Rules },
  { label: "Churn risk", show: (role) => role === "admin" || role === "manager", Panel: ChurnRisk },
  { label: "Reminder rules", show: (role) => role === "admin" || role === "manager", Panel: ReminderRules },
  { label: "Task templates", show: (role) => role === "admin" || role === "manager", Panel: TaskTemplates },
  { label: "Playbooks", show: (role) => role === "admin" || role === "manager", Panel: Playbooks },
  { label: "CSMs", show: (role) => role === "admin" || role === "manager", Panel: Team },
  { label: "Partners", show: (role) => role === "admin" || role === "manager", Panel: Partners },
  { label: "Custom fields", show: () => true, Panel: CustomFields },
  { label: "Connectors", show: (role) => role === "admin" || role === "manager", Panel: Connectors },
  { label: "Deck template", show: (role) => role === "admin", Panel: DeckTemplate },
  { label: "Webhooks", show: (role) => role === "admin", Panel: Webhooks },
];

export default function Settings() {
  const session = useSession();
  const tabs = TABS.filter((tab) => tab.show(session.role));
  const [params, setParams] = useSearchParams();
  const chosen = Math.max(0, tabs.findIndex((tab) => slug(tab.label) === params.get("tab")));
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Settings</h1>
      <Tabs
        selectedIndex={chosen}
        onChange={({ selectedIndex }) => {
          // The tab is kept in the address, so a setting can be linked to and survives a reload.
          const next = new URLSearchParams(params);
          next.set("tab", slug(tabs[selectedIndex].label));
          setParams(next, { replace: true });
        }}
      >
        <TabList aria-label="Settings" contained>
          {tabs.map((tab) => (
            <Tab key={tab.label}>{tab.label}</Tab>
          ))}
        </TabList>
        <TabPanels>
          {tabs.map((tab, index) => (
            <TabPanel key={tab.label}>{index === chosen ? <tab.Panel /> : null}</TabPanel>
          ))}
        </TabPanels>
      </Tabs>
    </>
  );
}

const slug = (label: string) => label.toLowerCase().replace(/[^a-z]+/g, "-");

