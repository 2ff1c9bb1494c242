defmodule Demo.Counter do
  @moduledoc "A counter process: the sample file of the Potion demo."
  use GenServer

  @doc "Starts the counter with an initial value."
  @spec start_link(integer()) :: GenServer.on_start()
  def start_link(initial \\ 0) do
    GenServer.start_link(__MODULE__, initial, name: __MODULE__)
  end

  @doc "Adds one to the counter and returns the new value."
  @spec increment() :: integer()
  def increment do
    
  end

  @impl true
  def init(initial), do: {:ok, initial}

  @impl true
  def handle_call(:increment, _from, count), do: {:reply, count + 1, count + 1}
end
