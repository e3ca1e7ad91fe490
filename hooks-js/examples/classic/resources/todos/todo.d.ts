/** The shape of a todo (config.json), for narrowing `data` with JSDoc in these hooks. */
export interface Todo {
  id: string;
  title: string;
  completed: boolean;
  priority: number;
  status: 'open' | 'done';
  assignedTo?: string;
  createdAt: string;
  updatedAt: string;
}
