/**
 * The agent picker: the agents the server hosts, for a new conversation (the
 * choice is remembered); an open conversation shows its own agent, locked.
 */
import { storage } from "./storage.js";
import { ui } from "./ui.js";

const known = { agents: [], defaultName: null };

/** Fill the picker from GET /agents; show `current` (the open conversation's agent) if given. */
export async function loadAgents(api, current) {
  const body = await api.agents();
  known.agents = body.agents;
  known.defaultName = body.agents.find((a) => a.default)?.name ?? body.agents[0]?.name ?? null;
  ui.agent.replaceChildren(
    ...body.agents.map((agent) => {
      const option = new Option(agent.name, agent.name);
      option.title = agent.description;
      return option;
    }),
  );
  showAgent(current ?? pickedAgent(), { locked: current !== null });
  ui.agentPicker.hidden = body.agents.length === 0;
}

/** The agent for a new conversation: the one picked last, else the server's default. */
export function pickedAgent() {
  const remembered = storage.agent;
  return known.agents.some((a) => a.name === remembered) ? remembered : known.defaultName;
}

export function showAgent(name, { locked }) {
  if (name && ![...ui.agent.options].some((o) => o.value === name)) {
    ui.agent.append(new Option(name, name));
  }
  if (name) ui.agent.value = name;
  ui.agent.disabled = locked;
  ui.agent.title = locked ? "The agent of this conversation" : "The agent for a new conversation";
  const description = known.agents.find((a) => a.name === ui.agent.value)?.description ?? "";
  ui.agentDescription.textContent = description;
  ui.emptyAgent.textContent = description;
}

ui.agent.addEventListener("change", () => {
  storage.agent = ui.agent.value;
  showAgent(ui.agent.value, { locked: false });
});
