"""OTP module templates (`string.Template`: `$module`, `$name_opt`...; Elixir code needs no `$`).

Each renders to a complete module with `@moduledoc`, `@impl true` callbacks and typespecs. The tests
compile every one with `elixirc` (GenStage/Phoenix ones are parsed with `Code.string_to_quoted`, their
dependencies are not part of Elixir).
"""

GENSERVER = '''\
defmodule $module do
  @moduledoc """
  A GenServer that keeps $short's state.
  """

  use GenServer

  @type state :: term()

  # Client API

  @doc "Starts the server linked to the caller."
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts \\\\ []) do
    GenServer.start_link(__MODULE__, opts$name_opt)
  end

  @doc "Returns the current state."
  @spec get($server_param) :: state()
  def get($server_arg) do
    GenServer.call($server, :get)
  end

  @doc "Replaces the state."
  @spec put(${server_param_comma}state()) :: :ok
  def put(${server_arg_comma}value) do
    GenServer.cast($server, {:put, value})
  end

  # Server callbacks

  @impl true
  def init(_opts) do
    {:ok, $state}
  end

  @impl true
  def handle_call(:get, _from, state) do
    {:reply, state, state}
  end

  @impl true
  def handle_cast({:put, value}, _state) do
    {:noreply, value}
  end

  @impl true
  def handle_info(_message, state) do
    {:noreply, state}
  end
end
'''

SUPERVISOR = '''\
defmodule $module do
  @moduledoc """
  Supervises $short's children with the `:$strategy` strategy.
  """

  use Supervisor

  @doc "Starts the supervisor linked to the caller."
  @spec start_link(keyword()) :: Supervisor.on_start()
  def start_link(opts \\\\ []) do
    Supervisor.start_link(__MODULE__, opts, name: __MODULE__)
  end

  @impl true
  def init(_opts) do
    children = [
      # {MyApp.Worker, []}
    ]

    Supervisor.init(children, strategy: :$strategy)
  end
end
'''

DYNAMIC_SUPERVISOR = '''\
defmodule $module do
  @moduledoc """
  Starts children on demand under a DynamicSupervisor.
  """

  use DynamicSupervisor

  @doc "Starts the supervisor linked to the caller."
  @spec start_link(keyword()) :: Supervisor.on_start()
  def start_link(opts \\\\ []) do
    DynamicSupervisor.start_link(__MODULE__, opts, name: __MODULE__)
  end

  @doc "Starts a child from its child spec (`{Module, arg}` or a map)."
  @spec start_child(Supervisor.child_spec() | {module(), term()} | module()) ::
          DynamicSupervisor.on_start_child()
  def start_child(spec) do
    DynamicSupervisor.start_child(__MODULE__, spec)
  end

  @doc "Stops a child started by `start_child/1`."
  @spec stop_child(pid()) :: :ok | {:error, :not_found}
  def stop_child(pid) when is_pid(pid) do
    DynamicSupervisor.terminate_child(__MODULE__, pid)
  end

  @impl true
  def init(_opts) do
    DynamicSupervisor.init(strategy: :one_for_one$max_children)
  end
end
'''

AGENT = '''\
defmodule $module do
  @moduledoc """
  An Agent holding $short's state.
  """

  use Agent

  @type state :: term()

  @doc "Starts the agent linked to the caller."
  @spec start_link(keyword()) :: Agent.on_start()
  def start_link(_opts \\\\ []) do
    Agent.start_link(fn -> $state end$name_opt)
  end

  @doc "Returns the current state."
  @spec get($server_param) :: state()
  def get($server_arg) do
    Agent.get($server, & &1)
  end

  @doc "Applies `fun` to the state."
  @spec update(${server_param_comma}(state() -> state())) :: :ok
  def update(${server_arg_comma}fun) when is_function(fun, 1) do
    Agent.update($server, fun)
  end
end
'''

TASK = '''\
defmodule $module do
  @moduledoc """
  A supervised one-off job: add `{$module, arg}` to a supervisor's children.
  """

  use Task, restart: :$restart

  @doc "Starts the task linked to its supervisor."
  @spec start_link(term()) :: {:ok, pid()}
  def start_link(arg) do
    Task.start_link(__MODULE__, :run, [arg])
  end

  @doc "The work itself; runs in the task process."
  @spec run(term()) :: :ok
  def run(_arg) do
    :ok
  end
end
'''

REGISTRY = '''\
defmodule $module do
  @moduledoc """
  A GenServer per key, named through `$registry` (start `{Registry, keys: :unique, name: $registry}`
  in your supervision tree first).
  """

  use GenServer

  @type key :: term()

  @doc "Starts the process registered under `key`."
  @spec start_link(key()) :: GenServer.on_start()
  def start_link(key) do
    GenServer.start_link(__MODULE__, key, name: via(key))
  end

  @doc "The `:via` name of the process registered under `key`."
  @spec via(key()) :: {:via, Registry, {module(), key()}}
  def via(key), do: {:via, Registry, {$registry, key}}

  @doc "The pid registered under `key`, if any."
  @spec whereis(key()) :: pid() | nil
  def whereis(key) do
    case Registry.lookup($registry, key) do
      [{pid, _value}] -> pid
      [] -> nil
    end
  end

  @doc "Returns the state of the process registered under `key`."
  @spec get(key()) :: term()
  def get(key), do: GenServer.call(via(key), :get)

  @impl true
  def init(key) do
    {:ok, %{key: key, data: $state}}
  end

  @impl true
  def handle_call(:get, _from, state) do
    {:reply, state.data, state}
  end
end
'''

APPLICATION = '''\
defmodule $module do
  @moduledoc """
  The OTP application: starts the top-level supervision tree.
  """

  use Application

  @impl true
  def start(_type, _args) do
    children = [
      {Registry, keys: :unique, name: $registry}
      # {MyApp.Worker, []}
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: $supervisor)
  end

  @impl true
  def stop(_state) do
    :ok
  end
end
'''

GENSTAGE_PRODUCER = '''\
defmodule $module do
  @moduledoc """
  A GenStage producer that emits increasing integers on demand (needs the `gen_stage` package).
  """

  use GenStage

  @doc "Starts the producer counting from `initial`."
  @spec start_link(integer()) :: GenServer.on_start()
  def start_link(initial \\\\ 0) do
    GenStage.start_link(__MODULE__, initial, name: __MODULE__)
  end

  @impl true
  def init(counter) do
    {:producer, counter}
  end

  @impl true
  def handle_demand(demand, counter) when demand > 0 do
    events = Enum.to_list(counter..(counter + demand - 1))
    {:noreply, events, counter + demand}
  end
end
'''

GENSTAGE_CONSUMER = '''\
defmodule $module do
  @moduledoc """
  A GenStage consumer subscribed to `$producer` (needs the `gen_stage` package).
  """

  use GenStage

  @doc "Starts the consumer."
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts \\\\ []) do
    GenStage.start_link(__MODULE__, opts)
  end

  @impl true
  def init(_opts) do
    {:consumer, :no_state, subscribe_to: [{$producer, max_demand: $max_demand}]}
  end

  @impl true
  def handle_events(events, _from, state) do
    Enum.each(events, &handle_event/1)
    {:noreply, [], state}
  end

  @spec handle_event(term()) :: :ok
  defp handle_event(_event), do: :ok
end
'''

PHOENIX_CHANNEL = '''\
defmodule $module do
  @moduledoc """
  A Phoenix channel for `"$topic:*"` topics.
  """

  use Phoenix.Channel

  @impl true
  def join("$topic:" <> _subtopic, _payload, socket) do
    {:ok, socket}
  end

  @impl true
  def handle_in("ping", payload, socket) do
    {:reply, {:ok, payload}, socket}
  end

  def handle_in("shout", payload, socket) do
    broadcast!(socket, "shout", payload)
    {:noreply, socket}
  end
end
'''

LIVEVIEW = '''\
defmodule $module do
  @moduledoc """
  A LiveView with a counter.
  """

  use Phoenix.LiveView

  @impl true
  def mount(_params, _session, socket) do
    {:ok, assign(socket, :count, 0)}
  end

  @impl true
  def handle_event("increment", _params, socket) do
    {:noreply, update(socket, :count, &(&1 + 1))}
  end

  @impl true
  def render(assigns) do
    ~H"""
    <div>
      <p>Count: <%= @count %></p>
      <button phx-click="increment">+1</button>
    </div>
    """
  end
end
'''
