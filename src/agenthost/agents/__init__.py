"""The agents agenthost hosts: built-in ones and the registry that loads the user's."""
